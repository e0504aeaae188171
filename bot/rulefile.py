"""The shape both user-extensible rule files share: a YAML list, or a mapping with ``rules:``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml


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
