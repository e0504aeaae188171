"""Release-notes documents (HTML or plain text) flattened into a list of text blocks.

The notes parser does not care whether a heading was ``<h3>``, ``### `` or an underlined line; it
needs an ordered list of blocks with a kind (heading level, paragraph, list item, table row) and
whether the block was wholly bold. HTML goes through the stdlib ``html.parser`` (tolerant of unclosed
tags, entities, odd nesting); text goes through a few line rules (Markdown headings, underlines,
bullets, ``**bold**``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "article",
        "table",
        "tr",
        "thead",
        "tbody",
        "blockquote",
        "pre",
        "header",
        "footer",
        "main",
        "aside",
        "figure",
        "figcaption",
        "details",
        "summary",
    ]
)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "nav", "button", "select"})
_STRONG_TAGS = frozenset({"strong", "b"})
_SPACE_RE = re.compile(r"[ \t\r\f\v\u00a0\u2002\u2003\u2009\u202f\u3000]+")
_INVISIBLE_RE = re.compile(r"[\u200b\u200c\u200d\ufeff\u00ad]")
_MD_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*$")
_BULLET_RE = re.compile(r"^\s*(?:[-*+•·]|\d{1,2}[.)])\s+")
_MD_STRONG_RE = re.compile(r"^\*\*(.+?)\*\*$|^__(.+?)__$")
_TAG_RE = re.compile(r"<[^>]{0,200}>")
_MD_LINK_RE = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_PR_START_RE = re.compile(r"^(?:PRs?|R)\s*#?\s*\d{6,8}", re.IGNORECASE)
_UNDERLINE_RE = re.compile(r"^\s*(=+|-+)\s*$")
_TEXT_SECTION_RE = re.compile(
    r"^(resolved issues|known issues.*|what's new|what.s in the release notes|build details|"
    r"patches contained in this release|image profiles|product support notices|earlier releases.*|"
    r"installation notes.*|upgrade notes.*|components|rollup bulletin|esxi image|"
    r"解決した問題|解決された問題|既知の問題.*|新機能|ビルドの詳細|イメージ ?プロファイル)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Block:
    """One unit of text. ``kind`` is ``h1``…``h6``, ``p``, ``li``, ``row`` or ``pre``."""

    kind: str
    text: str
    strong: bool = False

    @property
    def level(self) -> int | None:
        """Heading level, or None for non-headings."""
        return int(self.kind[1]) if self.kind[0] == "h" and self.kind[1:].isdigit() else None


def clean(text: str) -> str:
    return _SPACE_RE.sub(" ", _INVISIBLE_RE.sub("", text)).strip()


class _BlockParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._parts: list[str] = []
        self._strong_chars = 0
        self._chars = 0
        self._kind = "p"
        self._skip = 0
        self._strong = 0
        self._cells: list[str] | None = None
        self._pre = 0

    def _flush(self) -> None:
        text = clean("".join(self._parts))
        if text:
            strong = self._strong_chars >= max(1, int(self._chars * 0.9))
            if self._cells is not None:
                self._cells.append(text)
            else:
                self.blocks.append(Block(self._kind, text, strong))
        self._parts, self._strong_chars, self._chars = [], 0, 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _STRONG_TAGS:
            self._strong += 1
        elif tag == "br":
            self._flush()
        elif tag == "tr":
            self._end_row()
            self._cells = []
        elif tag in ("td", "th"):
            self._flush()
        elif tag in _BLOCK_TAGS:
            self._flush()
            self._kind = tag if tag[0] == "h" and tag[1:].isdigit() else ("li" if tag == "li" else "p")
            self._pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _STRONG_TAGS:
            self._strong = max(0, self._strong - 1)
        elif tag in ("td", "th"):
            self._flush()
        elif tag in ("tr", "table"):
            self._end_row()
        elif tag in _BLOCK_TAGS:
            self._flush()
            self._kind = "p"
            self._pre = max(0, self._pre - (tag == "pre"))

    def _end_row(self) -> None:
        self._flush()
        if self._cells:
            self.blocks.append(Block("row", " | ".join(self._cells)))
        self._cells = None

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._pre and "\n" in data:
            lines = data.split("\n")
            for line in lines[:-1]:
                self._parts.append(line)
                self._flush()
            data = lines[-1]
        self._parts.append(data)
        visible = len(data.strip())
        self._chars += visible
        if self._strong:
            self._strong_chars += visible

    def close(self) -> None:
        super().close()
        self._end_row()


def html_blocks(text: str) -> list[Block]:
    parser = _BlockParser()
    parser.feed(text)
    parser.close()
    return parser.blocks


def text_blocks(text: str) -> list[Block]:
    """Plain text / Markdown lines to blocks; a paragraph is one line (notes put one entry per line)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[Block] = []
    for index, raw in enumerate(lines):
        line = clean(_MD_LINK_RE.sub(r"\1", _TAG_RE.sub("", raw)))
        if not line or _UNDERLINE_RE.match(line):
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        heading = _MD_HEADING_RE.match(line)
        if heading:
            blocks.append(Block(f"h{len(heading.group(1))}", clean(heading.group(2).strip("*_ ")), True))
            continue
        if _UNDERLINE_RE.match(following) and _could_be_heading(line):
            level = 1 if following.strip().startswith("=") else 2
            blocks.append(Block(f"h{level}", line.strip("*_ "), True))
            continue
        if _TEXT_SECTION_RE.match(line.strip("*_: ")):
            blocks.append(Block("h2", line.strip("*_: "), True))
            continue
        kind = "p"
        if _BULLET_RE.match(raw):
            kind, line = "li", _BULLET_RE.sub("", line, count=1)
        bold = _MD_STRONG_RE.match(line)
        if bold:
            blocks.append(Block(kind, clean(bold.group(1) or bold.group(2)), True))
        else:
            blocks.append(Block(kind, line.replace("**", ""), False))
    return blocks


def _could_be_heading(line: str) -> bool:
    """A setext heading is short, does not end like a sentence and is not a ``PR nnnnnnn`` line."""
    return len(line) < 80 and not line.endswith((".", ":", "。", "：")) and not _PR_START_RE.match(line)


def looks_like_html(text: str) -> bool:
    head = text.lstrip()[:2000].lower()
    return head.startswith("<") or any(t in head for t in ("<html", "<body", "<p>", "<h1", "<h2", "<div"))
