import argparse
import os
import subprocess
import sys

import numpy as np
import pytest

import perceptlab.cli
from perceptlab.cli import library as library_cli
from perceptlab.data.library import StimulusLibrary
from tests.data.test_library import REPO, make_images, make_records


@pytest.fixture(autouse=True)
def _only_library_command(monkeypatch):
    """Run the real ``main`` with a parser holding only this command (other commands import torch)."""

    def build_parser() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="perceptlab")
        library_cli.register(parser.add_subparsers(dest="command"))
        return parser

    monkeypatch.setattr(perceptlab.cli, "build_parser", build_parser)


def main(argv: list[str]) -> int:
    return perceptlab.cli.main(argv)


@pytest.fixture()
def libdir(tmp_path):
    with StimulusLibrary.create(tmp_path / "lib") as lib:
        lib.add(make_records(3, pair=(3, 5)), make_images(3))
        lib.add(make_records(1, mode="controversial", pair=(1, 7)), make_images(1))
    return tmp_path / "lib"


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_info(libdir, capsys):
    assert main(["library", "info", str(libdir)]) == 0
    out = capsys.readouterr().out
    assert "4 stimuli" in out
    assert "status: new 4, accepted 0, rejected 0" in out
    assert "mode: controversial 1, uncertainty 3" in out
    assert "pair (a-b): 1-7 1, 3-5 3" in out


def test_set_status_and_tag(libdir, capsys):
    assert main(["library", "set-status", str(libdir), "s000001", "s000003", "--status", "accepted"]) == 0
    assert "2 stimuli now accepted (2 changed)" in capsys.readouterr().out
    assert main(["library", "tag", str(libdir), "s000001", "s000002", "--add", "good", "--add", "x"]) == 0
    assert main(["library", "tag", str(libdir), "s000002", "--remove", "x"]) == 0
    with StimulusLibrary.open(libdir) as lib:
        assert lib.ids(status="accepted") == ["s000001", "s000003"]
        assert lib.get("s000001").tags == ["good", "x"] and lib.get("s000002").tags == ["good"]


def test_export_both_formats(libdir, tmp_path, capsys):
    main(["library", "set-status", str(libdir), "s000002", "--status", "accepted"])
    assert main(["library", "export", str(libdir), "--format", "csv", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "stimuli.csv").is_file() and len(list((tmp_path / "c" / "images").iterdir())) == 4
    out = ["--out", str(tmp_path / "j"), "--status", "accepted"]
    assert main(["library", "export", str(libdir), "--format", "jspsych", *out]) == 0
    assert "wrote" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "j" / "images").iterdir()] == ["s000002.png"]


def test_export_jspsych_options(libdir, tmp_path, capsys):
    npm = tmp_path / "npm"
    from perceptlab.data.jspsych_kit import jspsych_files

    for f in jspsych_files("buttons-with-image"):
        pkg = npm / "node_modules" / f.package
        (pkg / f.path).parent.mkdir(parents=True, exist_ok=True)
        (pkg / f.path).write_text("//")
        (pkg / "package.json").write_text(f'{{"version": "{f.major}.0.1"}}')
    out = tmp_path / "j"
    args = ["library", "export", str(libdir), "--format", "jspsych", "--out", str(out), "--layout",
            "buttons-with-image", "--catch-rate", "0.34", "--catch-seed", "4", "--save-hook", "post",
            "--save-url", "https://lab.example.org/save", "--no-download", "--jspsych-from", str(npm)]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "recover.html" in said and "fill" not in said
    js = (out / "timeline.js").read_text()
    for needle in ('"layout": "buttons-with-image"', '"save_hook": "post"', '"download": false', '"n_catch": 2',
                   '"save_url": "https://lab.example.org/save"'):
        assert needle in js
    assert len(list((out / "jspsych").iterdir())) == 5 and len(list((out / "catch").iterdir())) == 2
    assert main(["library", "export", str(libdir), "--format", "jspsych", "--out", str(tmp_path / "x"),
                 "--save-hook", "post"]) == 2
    assert "needs a save URL" in _error_line(capsys)
    assert main(["library", "export", str(libdir), "--format", "csv", "--out", str(tmp_path / "c"),
                 "--catch-rate", "0.1", "--no-download"]) == 2
    assert "--catch-rate, --no-download only apply to --format jspsych" in _error_line(capsys)


def test_user_errors_exit_2_with_one_line(libdir, tmp_path, capsys):
    assert main(["library", "info", str(tmp_path)]) == 2
    assert "is not a PerceptLab library (no library.sqlite)" in _error_line(capsys)
    assert main(["library", "set-status", str(libdir), "s000999", "--status", "rejected"]) == 2
    assert "s000999" in _error_line(capsys)
    out = ["--out", str(tmp_path / "e")]
    assert main(["library", "export", str(libdir), "--format", "csv", *out, "--status", "accepted"]) == 2
    assert "no stimuli with status accepted" in _error_line(capsys)
    assert main(["library", "tag", str(libdir), "s000001"]) == 2
    assert "--add TAG" in _error_line(capsys)


def test_create(tmp_path, capsys):
    assert main(["library", "create", str(tmp_path / "new")]) == 0
    assert "created an empty library" in capsys.readouterr().out
    assert main(["library", "create", str(tmp_path / "new")]) == 2
    assert "already a PerceptLab library" in _error_line(capsys)


def test_module_entry_point(libdir):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "perceptlab", "library", "set-status", str(libdir), "s000042", "--status", "new"]
    bad = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: no stimulus 's000042'") and bad.stderr.count("\n") == 1


def test_sheet_tiles_the_selected_stimuli_with_captions(libdir, tmp_path, capsys):
    from PIL import Image

    from perceptlab.data.contact_sheet import caption, select_stimuli

    out = tmp_path / "sheet.png"
    assert main(["library", "sheet", str(libdir), "--out", str(out), "--passed", "--cols", "3", "--scale", "1"]) == 0
    assert "(3 stimuli)" in capsys.readouterr().out  # uncertainty 0 and 2 passed, controversial 0 passed
    sheet = np.asarray(Image.open(out))
    assert sheet.shape == (2 + 28 + 12 + 2, 2 + 3 * 30)  # one row of three 28-px tiles with captions
    with StimulusLibrary.open(libdir) as lib:
        recs = select_stimuli(lib, passed=True)
        first = lib.image(recs[0].id)
        assert [caption(r) for r in recs] == ["3-5", "3-5", "1|7"]
        assert select_stimuli(lib, passed=False, mode="uncertainty")[0].id == lib.ids()[1]
    np.testing.assert_array_equal(sheet[2:30, 2:30], first)  # the first tile is the first image, unscaled
    assert sheet[30:42, 2:30].max() > 100  # its caption was drawn below it
    assert main(["library", "sheet", str(libdir), "--out", str(out), "--tag", "none-such"]) == 2
    assert "no stimuli match" in _error_line(capsys)
    assert main(["library", "sheet", str(libdir), "--out", str(tmp_path / "no" / "s.png")]) == 2
    assert "does not exist" in _error_line(capsys)
