"""HTML of an advisory page flattened into what the page parser reads: text blocks and tables, in order.

The stdlib ``html.parser`` is tolerant of unclosed tags and truncated documents; a table cut off
mid-row still yields the rows read so far. Cells keep their text and the links inside them (the
workaround KB is usually a link).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_BLOCK = frozenset({"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "br", "section", "dt", "dd", "pre"})
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "nav", "button", "select"})
_SPACE = re.compile(r"[\s\u00a0\u200b]+")


def clean(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


@dataclass
class Cell:
    text: str = ""
    links: list[str] = field(default_factory=list)


@dataclass
class Table:
    rows: list[list[Cell]] = field(default_factory=list)


Item = str | Table


class _Flattener(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[Item] = []
        self._text: list[str] = []
        self._skip = 0
        self._tables: list[Table] = []
        self._row: list[Cell] | None = None
        self._cell: Cell | None = None
        self._cell_text: list[str] = []

    def _flush_text(self) -> None:
        text = clean("".join(self._text))
        self._text = []
        if text:
            self.items.append(text)

    def _close_cell(self) -> None:
        if self._cell is not None and self._row is not None:
            self._cell.text = clean(" ".join(self._cell_text))
            self._row.append(self._cell)
        self._cell, self._cell_text = None, []

    def _close_row(self) -> None:
        self._close_cell()
        if self._row is not None and self._tables and any(c.text for c in self._row):
            self._tables[-1].rows.append(self._row)
        self._row = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif tag == "table":
            self._flush_text()
            self._tables.append(Table())
        elif tag == "tr" and self._tables:
            self._close_row()
            self._row = []
        elif tag in ("td", "th") and self._tables:
            if self._row is None:
                self._row = []
            self._close_cell()
            self._cell = Cell()
        elif tag == "a" and self._cell is not None:
            href = dict(attrs).get("href")
            if href:
                self._cell.links.append(href)
        elif tag in _BLOCK:
            if self._cell is not None:
                self._cell_text.append(" ")
            else:
                self._flush_text()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "table" and self._tables:
            self._close_row()
            self.items.append(self._tables.pop())
        elif tag == "tr":
            self._close_row()
        elif tag in ("td", "th"):
            self._close_cell()
        elif tag in _BLOCK and self._cell is None:
            self._flush_text()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell is not None:
            self._cell_text.append(data)
        elif not self._tables:
            self._text.append(data)

    def finish(self) -> list[Item]:
        self.close()
        self._flush_text()
        while self._tables:  # a truncated document: keep what was read
            self._close_row()
            self.items.append(self._tables.pop())
        return self.items


def flatten(html: str) -> tuple[list[Item], str | None]:
    """The items, and why reading stopped early (the stdlib parser asserts on some broken markup)."""
    parser = _Flattener()
    try:
        parser.feed(html)
        return parser.finish(), None
    except (AssertionError, ValueError) as exc:
        parser.rawdata = ""  # drop the unreadable rest; keep what was read before it
        return (
            parser.finish(),
            f"markup unreadable after {parser.getpos()[0]} lines ({exc}); read what came before",
        )
