"""The entry point: subcommands, errors as one line, and paths opening in the app."""

import pytest

from perceptlab import cli


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("train", "eval", "generate", "bench", "library", "simulate", "analyze", "align", "manipulate", "models"):
        assert command in out


def test_existing_paths_open_the_app(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(cli, "_open_app", lambda argv: opened.append(argv) or 0)
    assert cli.main([str(tmp_path)]) == 0
    assert opened == [[str(tmp_path)]]
    assert cli.main([]) == 0 and opened[-1] == []


def test_unknown_model_is_one_line_error(capsys, isolated_models):
    code = cli.main(["eval", "classifiers", "--models", "nosuch"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: unknown model 'nosuch'") and "choose one of" in err[0]
