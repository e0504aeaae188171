"""What user-extensible rule files (log patterns, match rules, inhibition rules) share: the document
shape (a YAML list, or a mapping with ``rules:``) and reading the users' files in order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

R = TypeVar("R")


def rule_entries(text: str, source: str, error: type[Exception]) -> list[Any]:
    """The raw entries of one rule document; ``error`` (the caller's type) names the file on failure."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from None
    entries = document.get("rules") if isinstance(document, Mapping) else document
    if not isinstance(entries, list):
        raise error(f"{source}: expected a list of rules (or a mapping with 'rules')")
    return entries


def user_rules(
    paths: Iterable[str | Path], parse: Callable[[str, str], list[R]], error: type[Exception]
) -> Iterator[R]:
    """The rules of each user file, file by file; a file that cannot be read is ``error`` naming it."""
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise error(f"{path}: cannot read: {exc}") from None
        yield from parse(text, str(path))
