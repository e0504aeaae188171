"""``esxbot`` on the command line: run the bot, or use its parts without a chat server.

No logic lives here: parse the command line, build what is needed, print the result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence

from bot.chat.console import ConsoleAdapter
from bot.chat.render_json import reply_to_dict
from bot.chat.render_text import render_text
from bot.config import ConfigError, Settings, load_settings
from bot.inventory_file import InventoryError
from bot.messages import Command, Conversation, User
from bot.store.db import StoreError

log = logging.getLogger("esxbot")


def setup_logging(settings: Settings, *, quiet: bool = False) -> None:
    """``quiet`` (one-shot commands): INFO chatter is dropped unless a level was chosen explicitly."""
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    if quiet and settings.log_level.upper() == "INFO":
        level = logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


async def _run(settings: Settings) -> int:
    from bot.app import App

    app = await App.open(settings)
    try:
        if settings.demo_mode:
            log.info("demo mode: no chat platform or vCenter configured; bundled demo inventory")
        app.add_adapter(ConsoleAdapter(settings.console_user, app.services.clock))
        await app.run()
    finally:
        await app.close()
    return 0


async def _say(settings: Settings, text: str, as_user: str | None, as_json: bool) -> int:
    from bot.app import App

    app = await App.open(settings)
    try:
        user = as_user or settings.console_user
        command = Command(
            user=User(user if ":" in user else f"console:{user}"),
            conversation=Conversation(platform="console", room="console", direct=True),
            text=text,
            sent_at=app.services.clock.now(),
        )
        reply = await app.dispatcher.handle(command)
    finally:
        await app.close()
    if as_json:
        print(json.dumps(reply_to_dict(reply), indent=2, sort_keys=True, default=str))
    else:
        print(render_text(reply))
    return 0 if reply.ok else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="esxbot", description="ChatOps bot for VMware ESXi fleets")
    p.add_argument("--config", help="YAML settings file (environment ESXBOT_* and .env override it)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="run the bot (console demo when no chat platform is configured)")
    say = sub.add_parser("say", help="run one chat command as the console user and print the reply")
    say.add_argument("text", help='the chat command, e.g. "check esx01"')
    say.add_argument("--json", action="store_true", help="print the reply as JSON")
    say.add_argument("--as", dest="as_user", help="user id to run as, e.g. console:ann or slack:U123")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"esxbot: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings, quiet=args.cmd != "run")
    try:
        if args.cmd == "run":
            return asyncio.run(_run(settings))
        if args.cmd == "say":
            return asyncio.run(_say(settings, args.text, args.as_user, args.json))
    except (StoreError, InventoryError, ConfigError) as exc:
        print(f"esxbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2
