import sys

from ferry.cli.main import main

sys.exit(main())
