"""Library and model integrity (issue 13 items 9 and 11): missing PNGs are reported, a truncated
database is refused, export checks ids and images, analyze reads the database, not manifest.csv,
broken user models are reported and never loaded."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from perceptlab.data.export import export_csv
from perceptlab.data.library import StimulusLibrary
from perceptlab.data.trial_stimuli import library_stimuli
from perceptlab.errors import PerceptLabError
from tests.data.test_library import make_images, make_records


@pytest.fixture()
def lib_path(tmp_path):
    with StimulusLibrary.create(tmp_path / "lib") as lib:
        lib.add(make_records(3, pair=(3, 5)), make_images(3))
    return tmp_path / "lib"


def test_missing_png_is_reported(lib_path, capsys):
    import perceptlab.cli  # noqa: PLC0415

    (lib_path / "images" / "s000002.png").unlink()
    with StimulusLibrary.open(lib_path) as lib:
        assert lib.summary()["missing_images"] == ["s000002"]
    assert perceptlab.cli.main(["library", "info", str(lib_path)]) == 1
    assert "MISSING IMAGES: 1 stimuli" in capsys.readouterr().out


def test_zero_byte_database_is_refused(lib_path):
    (lib_path / "library.sqlite").write_bytes(b"")
    for extra in ("library.sqlite-wal", "library.sqlite-shm"):
        (lib_path / extra).unlink(missing_ok=True)
    with pytest.raises(PerceptLabError, match="is empty \\(0 bytes\\) although the folder holds 3 images"):
        StimulusLibrary.open(lib_path)


@pytest.mark.parametrize("bad", ["rgb", "size", "garbage"])
def test_export_refuses_images_that_are_not_stimuli(lib_path, tmp_path, bad):
    png = lib_path / "images" / "s000001.png"
    if bad == "rgb":
        Image.fromarray(np.zeros((28, 28, 3), dtype=np.uint8), "RGB").save(png)
    elif bad == "size":
        Image.fromarray(np.zeros((40, 64), dtype=np.uint8), "L").save(png)
    else:
        png.write_bytes(b"this is not a png at all")
    with StimulusLibrary.open(lib_path) as lib, pytest.raises(PerceptLabError, match="not 28x28 8-bit grayscale"):
        export_csv(lib, tmp_path / "out")
    assert not (tmp_path / "out" / "images" / "s000001.png").exists()


def test_analysis_reads_the_database_not_a_hand_edited_manifest(lib_path):
    manifest = lib_path / "manifest.csv"
    text = manifest.read_text().splitlines()
    text[1] = text[1].replace(",3,5,", ",0,9,", 1)  # a changed class_a / class_b
    text.append(text[-1].replace("s000003", "s000099"))  # a phantom row
    manifest.write_text("\n".join(text) + "\n")
    frame = library_stimuli(lib_path)
    assert frame["stimulus_id"].tolist() == ["s000001", "s000002", "s000003"]
    assert frame["class_a"].tolist() == [3, 3, 3] and frame["class_b"].tolist() == [5, 5, 5]


def test_broken_user_models_are_reported_not_loaded(tmp_path, capsys, monkeypatch):
    from perceptlab.engine.registry import Registry, builtin_weights_dir  # noqa: PLC0415

    src = builtin_weights_dir()
    cfg = json.loads((src / "mlp.json").read_text())
    user = tmp_path / "models"
    user.mkdir()
    for name, change in (("escape", {"file": "../../../../etc/passwd"}),
                         ("extra", {"arch_config": {**cfg.get("arch_config", {}), "colour": 3}})):
        shutil.copyfile(src / "mlp.safetensors", user / f"{name}.safetensors")
        (user / f"{name}.json").write_text(json.dumps({**cfg, "name": name, "file": f"{name}.safetensors",
                                                       **change}))
    reg = Registry(user_dir=user)
    assert "escape" not in reg.names() and "extra" not in reg.names()
    reasons = dict((p.stem, why) for p, why in reg.problems())
    assert "outside the models folder is refused" in reasons["escape"]
    assert "['colour']" in reasons["extra"]
    monkeypatch.setenv("PERCEPTLAB_MODELS", str(user))
    import perceptlab.cli  # noqa: PLC0415
    import perceptlab.engine.registry as registry  # noqa: PLC0415

    monkeypatch.setattr(registry, "_default", None)
    assert perceptlab.cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "broken user model escape.json" in out and "broken user model extra.json" in out
