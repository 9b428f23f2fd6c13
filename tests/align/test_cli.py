"""``perceptlab align`` / ``models-user`` / ``manipulate``: a tiny run and one-line errors."""

import json

import numpy as np
import pytest

import perceptlab.engine.registry as registry_module
from perceptlab.cli import main
from perceptlab.data.images import write_png

from .conftest import make_stimuli, make_trials


@pytest.fixture()
def cli_env(tmp_path, monkeypatch, builtin_dir, mnist_fake):
    models = tmp_path / "models"
    monkeypatch.setenv("PERCEPTLAB_WEIGHTS", str(builtin_dir))
    monkeypatch.setenv("PERCEPTLAB_MODELS", str(models))
    monkeypatch.setattr(registry_module, "_default", None)
    keys, images, dominant = make_stimuli(n=90, seed=4)
    folder = tmp_path / "images"
    folder.mkdir()
    for k, img in zip(keys, images):
        write_png(folder / k, img)
    trials = make_trials(keys, dominant, participants=3, seed=5)
    trials["stimulus"] = "dataset_PNG/uncertainty/" + trials["stimulus"]  # variMNIST-style keys
    csv = tmp_path / "trials.csv"
    trials.to_csv(csv, index=False)
    to_u8 = lambda x: np.round((x[:, 0] + 1) * 127.5).astype(np.uint8)  # noqa: E731
    npz = tmp_path / "mnist.npz"
    train, held = mnist_fake.train(), mnist_fake.held_out()
    np.savez(npz, x_train=to_u8(train.images), y_train=train.labels, x_test=to_u8(held.images), y_test=held.labels)
    return {"csv": csv, "images": folder, "models": models, "npz": npz, "out": tmp_path / "out"}


def _one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_align_run_then_models_user(cli_env, capsys):
    e = cli_env
    argv = [
        "align",
        "--trials",
        str(e["csv"]),
        "--images",
        str(e["images"]),
        "--base",
        "tinylr",
        "--level",
        "both",
        "--participants",
        "P1",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--train-layers",
        "all",
        "--mnist",
        str(e["npz"]),
        "--out",
        str(e["out"]),
        "--threads",
        "1",
    ]
    assert main(argv) == 0
    metrics = json.loads((e["out"] / "metrics.json").read_text())
    assert set(metrics["models"]) == {"tinylr-group", "tinylr-indiv-P1"}
    assert metrics["evaluation"]["indiv_vs_group"]["participants"] == 1
    assert (e["out"] / "tinylr-indiv-P1.safetensors").exists()
    assert sorted(p.name for p in e["models"].iterdir()) == [
        "tinylr-group.json",
        "tinylr-group.safetensors",
        "tinylr-indiv-P1.json",
        "tinylr-indiv-P1.safetensors",
    ]
    cfg = json.loads((e["models"] / "tinylr-indiv-P1.json").read_text())
    assert cfg["base"] == "tinylr-group" and cfg["participants"] == ["P1"] and cfg["level"] == "individual"
    capsys.readouterr()
    # a second run would clobber: refused before training
    err = _one_line_error(capsys, argv)
    assert "already exists" in err
    assert main(["models-user", "list"]) == 0
    assert "tinylr-indiv-P1" in capsys.readouterr().out
    assert main(["models-user", "rename", "tinylr-indiv-P1", "P1-model"]) == 0
    assert _one_line_error(capsys, ["models-user", "rename", "P1-model", "tinylr-group"])
    assert _one_line_error(capsys, ["models-user", "delete", "tinylr"])  # built-in
    assert main(["models-user", "delete", "P1-model"]) == 0
    assert not (e["models"] / "P1-model.json").exists()


def test_align_errors_are_one_line(cli_env, capsys, tmp_path):
    e = cli_env
    common = ["--images", str(e["images"]), "--out", str(e["out"]), "--mnist", str(e["npz"])]
    err = _one_line_error(capsys, ["align", "--trials", str(e["csv"]), "--base", "nosuchmodel", *common])
    assert "unknown classifier 'nosuchmodel'" in err
    err = _one_line_error(
        capsys,
        [
            "align",
            "--trials",
            str(e["csv"]),
            "--base",
            "tinylr",
            "--level",
            "individual",
            "--participants",
            "P9",
            *common,
        ],
    )
    assert "participant 'P9' is not in" in err
    err = _one_line_error(capsys, ["align", "--trials", str(tmp_path / "missing.csv"), "--base", "tinylr", *common])
    assert "does not exist" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _one_line_error(
        capsys, ["align", "--trials", str(e["csv"]), "--base", "tinylr", "--images", str(empty), "--out", str(e["out"])]
    )
    assert "have no image" in err
    err = _one_line_error(
        capsys, ["manipulate", "--library", str(tmp_path / "lib"), "--p1", "P1", "--p2", "P2", "--pairs", "1-7"]
    )
    assert "no individual model for participant 'P1'" in err
    assert not e["out"].exists() or not any(e["out"].iterdir())
