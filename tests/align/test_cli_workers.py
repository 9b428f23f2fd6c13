"""``perceptlab align --workers N``: the IndivNets as parallel tasks give the models of the serial run."""

import json

import pytest

from perceptlab.cli import main
from tests.align.test_cli import cli_env  # noqa: F401  (fixture)

pytest.importorskip("distributed")


@pytest.fixture(autouse=True)
def _fork_workers():
    import dask

    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):
        yield


def _argv(e, out, models):
    return ["align", "--trials", str(e["csv"]), "--images", str(e["images"]), "--base", "tinylr", "--level", "both",
            "--epochs", "2", "--batch-size", "32", "--mnist", str(e["npz"]), "--out", str(out),
            "--models-dir", str(models), "--threads", "1", "--no-eval"]  # fmt: skip


def test_align_on_two_local_workers_matches_the_serial_run(cli_env, tmp_path, capsys):  # noqa: F811
    e = cli_env
    assert main(_argv(e, tmp_path / "serial", tmp_path / "m1")) == 0
    assert main([*_argv(e, tmp_path / "fan", tmp_path / "m2"), "--workers", "2"]) == 0
    out = capsys.readouterr()
    assert "cluster: Dask local cluster" in out.out and "(2 workers)" in out.out
    assert out.out.count("saved tinylr-indiv-") == 2 * 3  # 3 participants, serial and fanned out
    serial = json.loads((tmp_path / "serial" / "metrics.json").read_text())
    fanned = json.loads((tmp_path / "fan" / "metrics.json").read_text())
    assert list(fanned["models"]) == list(serial["models"])
    for name, m in serial["models"].items():
        cfg1 = json.loads((tmp_path / "m1" / f"{name}.json").read_text())
        cfg2 = json.loads((tmp_path / "m2" / f"{name}.json").read_text())
        assert cfg1["sha256"] == cfg2["sha256"], name  # the same weights, bit for bit
        assert fanned["models"][name]["metrics"]["val_loss"] == m["metrics"]["val_loss"]
