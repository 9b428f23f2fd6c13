import sys

from perceptlab.cli import main

sys.exit(main())
