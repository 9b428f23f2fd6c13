"""Entry point for the PyInstaller bundle (see perceptlab.spec): the same as the ``perceptlab`` command."""

import multiprocessing
import sys

from perceptlab.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
