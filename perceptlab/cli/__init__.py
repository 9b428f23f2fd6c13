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
    try:
        from perceptlab._qt.app import run_app  # noqa: PLC0415
    except ImportError:
        from perceptlab.cli.demo import run_demo  # noqa: PLC0415

        print("The desktop app is not part of this build yet; running the headless demo instead.")
        return run_demo(None)
    return run_app(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return _open_app(argv)
    parser = build_parser()
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
