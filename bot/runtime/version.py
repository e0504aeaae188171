"""Which esxbot this is: the package version and the git commit it was built from."""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Written by the image build (deploy/Dockerfile) next to this module: an image has no git checkout.
REVISION_FILE = "revision.txt"


def package_version() -> str:
    try:
        return metadata.version("esxbot")
    except metadata.PackageNotFoundError:
        return "unknown"


def revision(package_dir: Path = HERE) -> str:
    """The commit: baked in at build time, else that of the checkout this runs from, else unknown.

    Git is asked only when the package sits in a source checkout (pyproject.toml two levels up), so
    an installed copy inside some other repository does not report that repository's commit.
    """
    baked = package_dir / REVISION_FILE
    if baked.is_file() and (text := baked.read_text().strip()):
        return text
    git = shutil.which("git")
    if git is None or not (package_dir.parents[1] / "pyproject.toml").is_file():
        return "unknown"
    try:
        described = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [git, "-C", str(package_dir), "describe", "--always", "--dirty", "--abbrev=40", "--exclude=*"],
            capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return described.stdout.strip() if described.returncode == 0 else "unknown"


def describe() -> str:
    return f"esxbot {package_version()} (commit {revision()})"
