"""Users of the fake workspace act: the payloads Slack would send when they type or click."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from tests.slack_fake import payloads
from tests.slack_fake.web_api import Channel, Message, Workspace


class People:
    """Builds slash-command, mention, DM and button-click payloads from the workspace's real state."""

    def __init__(self, workspace: Workspace, port: Callable[[], int], slash_command: str) -> None:
        self.workspace = workspace
        self.port = port
        self.slash_command = slash_command

    def user_message(
        self, text: str, *, user: str, channel: str, thread_ts: str | None = None, ts: str | None = None
    ) -> Message:
        message = Message(
            channel=channel,
            ts=ts or self.workspace.next_ts(),
            text=text,
            blocks=None,
            user=user,
            thread_ts=thread_ts,
        )
        self.workspace.messages.append(message)
        return message

    def mention_payload(
        self,
        text: str,
        *,
        user: str = "U0ANN0001",
        channel: str = "C0OPS0001",
        thread_ts: str | None = None,
        sent_at: float | None = None,
    ) -> tuple[Message, dict[str, Any]]:
        ts = f"{sent_at:.6f}" if sent_at is not None else None
        message = self.user_message(
            f"<@{payloads.BOT_USER_ID}> {text}", user=user, channel=channel, thread_ts=thread_ts, ts=ts
        )
        event = payloads.mention_event(
            user=user, channel=channel, text=message.text, ts=message.ts, thread_ts=thread_ts
        )
        return message, self._callback(event, message.ts)

    def dm_payload(
        self, text: str, *, user: str = "U0ANN0001", sent_at: float | None = None
    ) -> tuple[Message, dict[str, Any]]:
        channel = self.workspace.dm_channel(user).id
        ts = f"{sent_at:.6f}" if sent_at is not None else None
        message = self.user_message(text, user=user, channel=channel, ts=ts)
        event = payloads.im_event(user=user, channel=channel, text=text, ts=message.ts, thread_ts=None)
        return message, self._callback(event, message.ts)

    def click_payload(
        self,
        message: Message,
        *,
        value: str | None = None,
        action_id: str | None = None,
        user: str = "U0ANN0001",
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        """``ephemeral``: a click on a message only the user saw; Slack then sends no ``message``."""
        for block in message.blocks or []:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("value") == value or (action_id and element.get("action_id") == action_id):
                    body = payloads.block_actions(
                        user=user,
                        user_name=self.workspace.users[user],
                        channel=message.channel,
                        channel_name=self._channel(message.channel).name,
                        message=message.as_payload(),
                        action=element,
                        block_id=block.get("block_id"),
                        trigger_id=uuid.uuid4().hex,
                        response_url=f"http://127.0.0.1:{self.port()}/respond/{uuid.uuid4().hex}",
                        action_ts=self.workspace.next_ts(),
                    )
                    if ephemeral:
                        body.pop("message", None)
                        body["container"] = {**body.get("container", {}), "is_ephemeral": True}
                    return body
        raise LookupError(f"no button {value or action_id!r} on message {message.ts}")

    def _channel(self, channel: str) -> Channel:
        return self.workspace.channels.get(channel) or Channel(id=channel, name=channel)

    def _callback(self, event: dict[str, Any], ts: str) -> dict[str, Any]:
        return payloads.event_callback(
            event, event_id=f"Ev{uuid.uuid4().hex[:10].upper()}", event_time=int(float(ts))
        )

    def slash_payload(
        self, text: str, *, user: str = "U0ANN0001", channel: str = "C0OPS0001"
    ) -> dict[str, Any]:
        trigger = uuid.uuid4().hex
        return payloads.slash_command(
            command=self.slash_command,
            text=text,
            user=user,
            user_name=self.workspace.users[user],
            channel=channel,
            channel_name=self._channel(channel).name,
            trigger_id=trigger,
            response_url=f"http://127.0.0.1:{self.port()}/respond/{trigger}",
        )
