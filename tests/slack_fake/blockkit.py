"""Block Kit validation as Slack's servers apply it to `chat.postMessage` / `chat.update`.

Limits from Slack's reference pages (docs.slack.dev "Blocks", "Block elements", "Composition objects",
`chat.postMessage`): 50 blocks per message; section text 3000 chars; 10 section fields of 2000 chars;
header text 150 chars; context: 10 elements; actions: 25 elements; button text 75 chars, value 2000,
action_id and block_id 255, url 3000; confirmation dialog title 100, text 300, confirm/deny 30 chars;
`style` only `primary`/`danger`; message `text` 40,000 chars (`msg_too_long`). Slack also rejects
messages whose blocks carry more than about 13,000 characters in total with `msg_blocks_too_long`
(undocumented, observed in slackapi/bolt-js#2509); the fake uses 13,000.

Errors come back the way Slack words them: a list of messages with a JSON pointer, and one error code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_BLOCKS = 50
MAX_TEXT = 40_000
MAX_BLOCKS_TEXT_TOTAL = 13_000
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ID_LENGTH = 255
URL_LENGTH = 3000
CONFIRM_LIMITS = {"title": 100, "text": 300, "confirm": 30, "deny": 30}
STYLES = {"primary", "danger"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """`error` is None when Slack would accept the message; otherwise Slack's error code."""

    error: str | None
    messages: tuple[str, ...] = ()
    warning: str | None = None


class _Check:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.text_total = 0

    def fail(self, message: str, pointer: str) -> None:
        self.problems.append(f"{message} [json-pointer:{pointer}]")

    def text_object(self, obj: Any, pointer: str, *, limit: int, kinds: set[str]) -> None:
        if not isinstance(obj, dict):
            self.fail("expected an object", pointer)
            return
        if obj.get("type") not in kinds:
            self.fail(f"must be one of {sorted(kinds)}", f"{pointer}/type")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.fail("must be a non-empty string", f"{pointer}/text")
            return
        self.text_total += len(text)
        if len(text) > limit:
            self.fail(f"must be less than {limit + 1} characters", f"{pointer}/text")

    def block_id(self, block: dict[str, Any], pointer: str, seen: set[str]) -> None:
        block_id = block.get("block_id")
        if block_id is None:
            return
        if not isinstance(block_id, str) or not 0 < len(block_id) <= ID_LENGTH:
            self.fail(f"must be 1-{ID_LENGTH} characters", f"{pointer}/block_id")
        elif block_id in seen:
            self.fail("duplicate block_id", f"{pointer}/block_id")
        else:
            seen.add(block_id)

    def block(self, block: Any, pointer: str, seen_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.fail("expected an object", pointer)
            return
        self.block_id(block, pointer, seen_ids)
        match block.get("type"):
            case "section":
                self.section(block, pointer)
            case "header":
                self.text_object(
                    block.get("text"), f"{pointer}/text", limit=HEADER_TEXT, kinds={"plain_text"}
                )
            case "divider":
                pass
            case "context":
                self.context(block, pointer)
            case "actions":
                self.actions(block, pointer)
            case other:
                self.fail(f"unsupported block type {other!r}", f"{pointer}/type")

    def section(self, block: dict[str, Any], pointer: str) -> None:
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            self.fail("must provide text or fields", pointer)
        if text is not None:
            self.text_object(text, f"{pointer}/text", limit=SECTION_TEXT, kinds={"plain_text", "mrkdwn"})
        if fields is not None:
            if not isinstance(fields, list) or not fields:
                self.fail("must be a non-empty array", f"{pointer}/fields")
                return
            if len(fields) > SECTION_FIELDS:
                self.fail(f"must provide no more than {SECTION_FIELDS} items", f"{pointer}/fields")
            for i, field in enumerate(fields):
                self.text_object(
                    field, f"{pointer}/fields/{i}", limit=FIELD_TEXT, kinds={"plain_text", "mrkdwn"}
                )
        if "accessory" in block:
            self.button(block["accessory"], f"{pointer}/accessory")

    def context(self, block: dict[str, Any], pointer: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            self.fail("must be a non-empty array", f"{pointer}/elements")
            return
        if len(elements) > CONTEXT_ELEMENTS:
            self.fail(f"must provide no more than {CONTEXT_ELEMENTS} items", f"{pointer}/elements")
        for i, element in enumerate(elements):
            self.text_object(
                element, f"{pointer}/elements/{i}", limit=SECTION_TEXT, kinds={"plain_text", "mrkdwn"}
            )

    def actions(self, block: dict[str, Any], pointer: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            self.fail("must be a non-empty array", f"{pointer}/elements")
            return
        if len(elements) > ACTIONS_ELEMENTS:
            self.fail(f"must provide no more than {ACTIONS_ELEMENTS} items", f"{pointer}/elements")
        action_ids: set[str] = set()
        for i, element in enumerate(elements):
            self.button(element, f"{pointer}/elements/{i}")
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if isinstance(action_id, str):
                if action_id in action_ids:
                    self.fail("duplicate action_id", f"{pointer}/elements/{i}/action_id")
                action_ids.add(action_id)

    def button(self, element: Any, pointer: str) -> None:
        if not isinstance(element, dict) or element.get("type") != "button":
            self.fail("only button elements are supported by this fake", f"{pointer}/type")
            return
        self.text_object(element.get("text"), f"{pointer}/text", limit=BUTTON_TEXT, kinds={"plain_text"})
        for key, limit in (("value", BUTTON_VALUE), ("action_id", ID_LENGTH), ("url", URL_LENGTH)):
            value = element.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                self.fail(f"must be a string of at most {limit} characters", f"{pointer}/{key}")
        style = element.get("style")
        if style is not None and style not in STYLES:
            self.fail("must be one of primary, danger", f"{pointer}/style")
        if "confirm" in element:
            self.confirm(element["confirm"], f"{pointer}/confirm")

    def confirm(self, dialog: Any, pointer: str) -> None:
        if not isinstance(dialog, dict):
            self.fail("expected an object", pointer)
            return
        for key, limit in CONFIRM_LIMITS.items():
            kinds = {"plain_text", "mrkdwn"} if key == "text" else {"plain_text"}
            self.text_object(dialog.get(key), f"{pointer}/{key}", limit=limit, kinds=kinds)
        style = dialog.get("style")
        if style is not None and style not in STYLES:
            self.fail("must be one of primary, danger", f"{pointer}/style")


def validate_message(text: Any, blocks: Any) -> Verdict:
    """Check a message's ``text`` and ``blocks`` (already JSON-decoded) the way Slack does."""
    if text is not None and not isinstance(text, str):
        return Verdict("invalid_arguments", ("text must be a string",))
    if blocks is None:
        if not text:
            return Verdict("no_text")
        if len(text) > MAX_TEXT:
            return Verdict("msg_too_long")
        return Verdict(None)
    if not isinstance(blocks, list):
        return Verdict("invalid_blocks_format", ("blocks must be an array",))
    if text is not None and len(text) > MAX_TEXT:
        return Verdict("msg_too_long")
    check = _Check()
    if not blocks:
        check.fail("must provide at least 1 item", "/blocks")
    if len(blocks) > MAX_BLOCKS:
        check.fail(f"must provide no more than {MAX_BLOCKS} items", "/blocks")
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        check.block(block, f"/blocks/{i}", seen_ids)
    if check.problems:
        return Verdict("invalid_blocks", tuple(check.problems))
    if check.text_total > MAX_BLOCKS_TEXT_TOTAL:
        return Verdict("msg_blocks_too_long")
    warning = None if text else "missing_text_fallback"
    return Verdict(None, warning=warning)
