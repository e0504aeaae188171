"""Where the shared real-data folder lives, and a skip when it is absent (fresh clones outside CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_file(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{SHARED} absent: real-data test needs ../shared/data/{relative}")
    return path
