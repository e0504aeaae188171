"""``python -m bot`` is ``esxbot``."""

import sys

from bot.cli import main

sys.exit(main())
