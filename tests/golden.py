"""One golden-file check for every renderer test: ``ESXBOT_UPDATE_GOLDEN=1`` rewrites the files.

After an intended change, run the tests once with the variable set, then review the diff of
tests/golden/ before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

UPDATE = "ESXBOT_UPDATE_GOLDEN"


def check_golden(path: Path, actual: str) -> None:
    """``actual`` equals the golden file at ``path`` (written instead when ``ESXBOT_UPDATE_GOLDEN=1``)."""
    if os.environ.get(UPDATE) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run with {UPDATE}=1 and review the new file"
    assert actual == path.read_text(encoding="utf-8")
