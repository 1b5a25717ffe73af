import sys

from mpmmu.cli import main

sys.exit(main())
