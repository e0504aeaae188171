"""``python -m bot`` is ``esxbot``."""

import sys

from bot.runtime.cli import main

sys.exit(main())
