"""Command-line entry point.

``perceptlab`` with no arguments opens the desktop app; subcommands run headless. Every module in this
package that defines ``register(subparsers)`` contributes a subcommand; the handler it sets with
``parser.set_defaults(func=...)`` receives the parsed arguments and returns an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from perceptlab import __version__
from perceptlab.errors import Cancelled, PerceptLabError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perceptlab",
        description="PerceptLab: images on the perceptual boundaries of neural classifiers (BAM).",
    )
    parser.add_argument("--version", action="version", version=f"perceptlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def _open_app(argv: list[str]) -> int:
    from perceptlab._qt.platform_check import platform_hint  # noqa: PLC0415 - imports no Qt

    hint = platform_hint()
    if hint:  # Qt would abort with a message that names one missing library of several
        print(hint, file=sys.stderr)
        return 2
    try:
        from perceptlab._qt.app import run_app  # noqa: PLC0415
    except ImportError as exc:
        print(
            f"error: the desktop app needs PySide6, pyqtgraph and superqt ({exc}) — install them with "
            "pip install 'perceptlab[app]', or use the headless subcommands (perceptlab --help)",
            file=sys.stderr,
        )
        return 2
    return run_app(argv)


def _are_paths(argv: list[str], parser: argparse.ArgumentParser) -> bool:
    """``perceptlab LIBRARY_OR_TRIALS ...``: existing paths that are no subcommand open in the app."""
    from pathlib import Path  # noqa: PLC0415

    commands = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()  # noqa: SLF001
    return argv[0] not in commands and all(Path(a).exists() for a in argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # the app: no subcommand modules to import, the window should show at once
        return _open_app(argv)
    parser = build_parser()
    if _are_paths(argv, parser):
        return _open_app(argv)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except PerceptLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
