"""``subscribe <topic>`` / ``unsubscribe <topic>`` / ``subscriptions``: what this room is told about."""

from __future__ import annotations

from typing import Literal

from bot.command.auth import Role
from bot.command.context import Context
from bot.command.spec import command
from bot.messages import Reply, Style, Text

Topic = Literal["releases", "alerts", "security"]

ABOUT = {
    "releases": "new ESXi releases and the fixes that matter to this fleet",
    "alerts": "bootbank-loss pages, escalations and resolutions",
    "security": "new and revised security advisories, exploited CVEs and the hosts they concern",
}


@command("subscribe", help="Post a topic in this room: releases, alerts or security", role=Role.OPERATOR)
async def subscribe(ctx: Context, topic: Topic) -> Reply:
    added = await ctx.services.store.subscriptions.add(
        ctx.command.conversation.key, topic, by=ctx.user.id, at=ctx.services.clock.now()
    )
    if not added:
        return Reply.text(f"This room is already subscribed to {topic}.")
    return Reply.text(f"This room will hear about {ABOUT[topic]}.", style=Style.SUCCESS)


@command("unsubscribe", help="Stop posting a topic in this room", role=Role.OPERATOR)
async def unsubscribe(ctx: Context, topic: Topic) -> Reply:
    removed = await ctx.services.store.subscriptions.remove(ctx.command.conversation.key, topic)
    return Reply.text(
        f"Unsubscribed from {topic}." if removed else f"This room was not subscribed to {topic}."
    )


@command("subscriptions", help="The topics this room is subscribed to", role=Role.VIEWER)
async def subscriptions(ctx: Context) -> Reply:
    topics = await ctx.services.store.subscriptions.topics(ctx.command.conversation.key)
    text = "Subscribed: " + ", ".join(topics) if topics else "This room is subscribed to nothing."
    return Reply(summary=text, blocks=(Text(text),), data={"topics": topics})
