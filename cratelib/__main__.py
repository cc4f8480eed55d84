import sys

from cratelib.cli import main

sys.exit(main())
