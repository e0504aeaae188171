"""``esxbot`` on the command line: run the bot, or use its parts without a chat server.

No logic lives here: parse the command line, build what is needed, print the result.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bot.advisories.offline_cli import advisories_match, advisories_parse, advisories_poll_once
from bot.alerts.inhibition import InhibitRuleError
from bot.alerts.log_scan import render as render_scan
from bot.alerts.log_scan import scan_files
from bot.alerts.patterns import LogRuleError, load_rules
from bot.builds import BuildCatalog
from bot.chat.base import ChatAdapter
from bot.chat.console import ConsoleAdapter
from bot.chat.render_json import reply_to_dict
from bot.chat.render_text import render_text
from bot.config import ConfigError, Settings, load_settings
from bot.inventory.static_file import InventoryError, load_inventory
from bot.messages import Command, Conversation, User
from bot.releases.match_rules import MatchRuleError
from bot.releases.offline_cli import match_notes, notes_parse, sources_poll_once
from bot.releases.sources.poller import RELEASE_KINDS
from bot.runtime.logconfig import Correlation, Redactor, configure, secret_values
from bot.runtime.sections import effective_settings, read_sections
from bot.runtime.version import describe
from bot.store.sql.base import StoreError
from bot.vsphere.dump import dump_inventory

if TYPE_CHECKING:
    from bot.runtime.app import App

log = logging.getLogger("esxbot")


def setup_logging(
    settings: Settings, correlation: Correlation, *, quiet: bool = False, also: object = None
) -> None:
    """Redacted (every configured secret, ``also``'s too), correlated log lines; JSON with ``log_json``.

    ``quiet`` (one-shot commands): INFO chatter is dropped unless a level was chosen explicitly.
    """
    level = settings.log_level.upper()
    if quiet and level == "INFO":
        level = "WARNING"
    configure(
        level=level,
        json_lines=settings.log_json,
        redactor=Redactor(secret_values((settings, also))),
        correlation=correlation,
    )


def chat_adapters(app: App) -> list[ChatAdapter]:
    """Slack and/or Matrix when configured; the console otherwise."""
    settings, clock = app.settings, app.services.clock
    found: list[ChatAdapter] = []
    if settings.slack.enabled:
        from bot.chat.slack import SlackAdapter

        found.append(
            SlackAdapter(
                settings.slack,
                app.services.store.inbound,
                clock=clock,
                mutating=app.dispatcher.is_mutating,
                stale_after=settings.stale_command_age,
                http_host=settings.slack.http_host,
            )
        )
    if settings.matrix.enabled:
        from bot.chat.matrix import MatrixAdapter

        found.append(
            MatrixAdapter(
                settings.matrix,
                app.db,
                clock=clock,
                mutating=app.dispatcher.is_mutating,
                stale_after=settings.stale_command_age,
            )
        )
    greeting = app.demo.greeting() if app.demo is not None else ""
    return found or [ConsoleAdapter(settings.console_user, clock, greeting=greeting)]


async def _run(settings: Settings, correlation: Correlation) -> int:
    from bot.runtime.app import App

    app = await App.open(settings, correlation=correlation)
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if main is not None:
        loop.add_signal_handler(signal.SIGTERM, main.cancel)
    try:
        if settings.demo_mode:
            chats = [
                name
                for name, on in (("slack", settings.slack.enabled), ("matrix", settings.matrix.enabled))
                if on
            ]
            why = (
                "demo: true in the settings"
                if settings.demo
                else "no chat platform, vCenter or inventory configured"
            )
            log.info(
                "demo mode (%s): bundled demo inventory and release data; chat: %s",
                why,
                ", ".join(chats) or "console",
            )
        for adapter in chat_adapters(app):
            app.add_adapter(adapter)
        # Start-up objects (modules, pyVmomi's type tables, settings, the app) live as long as the
        # process; freezing them keeps them out of every later full collection, which otherwise
        # walks them all (~24 ms in the middle of a 1,000-host inventory refresh, ~2 ms frozen;
        # benchmarks/inventory.py). The GC stays on for everything made after this point.
        gc.freeze()
        await app.run()
    except asyncio.CancelledError:
        log.info("stopping")
    finally:
        await app.close()
    return 0


async def _sources_poll(settings: Settings) -> tuple[str, int]:
    from bot.runtime.app import App

    app = await App.open(settings)
    try:
        results = []
        if app.poller is not None and any(s.kind in RELEASE_KINDS for s in app.poller.sources):
            results.append(await sources_poll_once(app.poller))
        if app.advisory_poller is not None:
            results.append(await advisories_poll_once(app.advisory_poller))
        if not results:
            return "no source configured (add `sources:` to the config file)", 2
        return "\n".join(text for text, _ in results), max(code for _, code in results)
    finally:
        await app.close()


def _logs_scan(args: argparse.Namespace) -> int:
    hosts = load_inventory(args.inventory) if args.inventory else None
    result = scan_files(args.files, hosts, rules=load_rules(args.rules), default_host=args.default_host)
    print(render_scan(result, json_output=args.json))
    for error in result.errors:
        print(f"esxbot: {error}", file=sys.stderr)
    return 2 if result.errors else 0


async def _say(settings: Settings, text: str, as_user: str | None, as_json: bool) -> int:
    from bot.runtime.app import App

    app = await App.open(settings)
    try:
        user = as_user or settings.console_user
        command = Command(
            user=User(user if ":" in user else f"console:{user}"),
            conversation=Conversation(platform="console", room="console", direct=True),
            text=text,
            sent_at=app.services.clock.now(),
        )
        reply = await app.handle(command)
    finally:
        await app.close()
    if as_json:
        print(json.dumps(reply_to_dict(reply), indent=2, sort_keys=True, default=str))
    else:
        print(render_text(reply))
    return 0 if reply.ok else 1


class VersionAction(argparse.Action):
    """``--version``: worked out only when asked (it may ask git), then exit."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> NoReturn:
        print(describe())
        parser.exit()


class _Parsers(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Every subcommand also takes ``--config``, so it works before or after the subcommand."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parsed: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        parsed.register("action", "parsers", _Parsers)
        parsed.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
        return parsed


CONFIG_HELP = "YAML settings file (environment ESXBOT_* and .env override it)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="esxbot", description="ChatOps bot for VMware ESXi fleets")
    p.add_argument("--version", action=VersionAction, nargs=0, help="print the version and git commit")
    p.register("action", "parsers", _Parsers)
    p.add_argument("--config", help=CONFIG_HELP)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="run the bot (console demo when no chat platform is configured)")
    say = sub.add_parser("say", help="run one chat command as the console user and print the reply")
    say.add_argument("text", help='the chat command, e.g. "check esx01"')
    say.add_argument("--json", action="store_true", help="print the reply as JSON")
    say.add_argument("--as", dest="as_user", help="user id to run as, e.g. console:ann or slack:U123")

    notes = sub.add_parser("notes", help="release notes").add_subparsers(dest="notes_cmd", required=True)
    parse = notes.add_parser(
        "parse", help="one release-notes document (file or URL) to a release and its fixes"
    )
    parse.add_argument("target", help="file path or http(s) URL")
    parse.add_argument("--json", action="store_true")

    match = sub.add_parser("match", help="every fix of these releases against every host of an inventory")
    match.add_argument("--notes", action="append", required=True, help="release-notes file (repeatable)")
    match.add_argument("--inventory", required=True, help="static inventory file (YAML or JSON)")
    match.add_argument("--rules", action="append", default=[], help="extra match-rule file (YAML)")
    match.add_argument("--json", action="store_true")

    sources = sub.add_parser("sources", help="release sources").add_subparsers(
        dest="sources_cmd", required=True
    )
    poll = sources.add_parser("poll", help="poll every configured source and print what is new")
    poll.add_argument("--once", action="store_true", required=True, help="poll once and exit")

    logs = sub.add_parser("logs", help="saved ESXi logs").add_subparsers(dest="logs_cmd", required=True)
    scan = logs.add_parser("scan", help="run the bootbank log rules over saved ESXi logs")
    scan.add_argument("files", nargs="+", type=Path)
    scan.add_argument("--inventory", type=Path, help="static inventory: its boot devices decide")
    scan.add_argument("--host", dest="default_host", help="host for lines that name none (local log files)")
    scan.add_argument("--rules", type=Path, action="append", default=[], help="extra rule file (YAML)")
    scan.add_argument("--json", action="store_true")

    advisories = sub.add_parser("advisories", help="security advisories").add_subparsers(
        dest="adv_cmd", required=True
    )
    adv_parse = advisories.add_parser(
        "parse", help="one advisory page, advisory-list JSON or CVE JSON 5 record (file or URL)"
    )
    adv_parse.add_argument("target", help="file path or http(s) URL")
    adv_parse.add_argument("--json", action="store_true")
    adv_match = advisories.add_parser("match", help="every CVE of these advisories against every host")
    adv_match.add_argument("--advisory", action="append", required=True, help="file or URL (repeatable)")
    adv_match.add_argument("--kev", action="append", default=[], help="CISA KEV catalog JSON (repeatable)")
    adv_match.add_argument("--inventory", required=True, help="static inventory file (YAML or JSON)")
    adv_match.add_argument("--json", action="store_true")

    inventory = sub.add_parser("inventory", help="live inventory").add_subparsers(
        dest="inv_cmd", required=True
    )
    dump = inventory.add_parser("dump", help="print what the configured vCenters report")
    dump.add_argument("--json", action="store_true")

    config = sub.add_parser("config", help="settings").add_subparsers(dest="config_cmd", required=True)
    config.add_parser("check", help="validate the settings and print them with secrets redacted")
    return p


def _print(result: tuple[str, int]) -> int:
    text, code = result
    print(text)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        sections = read_sections(settings)
    except ConfigError as exc:
        print(f"esxbot: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "config":
        print(effective_settings(settings, sections), end="")
        return 0
    correlation = Correlation()
    console = not (settings.slack.enabled or settings.matrix.enabled)
    setup_logging(settings, correlation, quiet=args.cmd != "run" or console, also=sections)
    try:
        if args.cmd == "run":
            return asyncio.run(_run(settings, correlation))
        if args.cmd == "say":
            return asyncio.run(_say(settings, args.text, args.as_user, args.json))
        if args.cmd == "notes":
            return _print(asyncio.run(notes_parse(args.target, as_json=args.json)))
        if args.cmd == "match":
            return _print(
                asyncio.run(match_notes(args.notes, args.inventory, as_json=args.json, rule_files=args.rules))
            )
        if args.cmd == "advisories" and args.adv_cmd == "parse":
            return _print(asyncio.run(advisories_parse(args.target, as_json=args.json)))
        if args.cmd == "advisories":
            return _print(
                asyncio.run(
                    advisories_match(args.advisory, args.inventory, kev_files=args.kev, as_json=args.json)
                )
            )
        if args.cmd == "sources":
            return _print(asyncio.run(_sources_poll(settings)))
        if args.cmd == "logs":
            return _logs_scan(args)
        if args.cmd == "inventory":
            catalog = BuildCatalog.bundled()
            code, text = asyncio.run(dump_inventory(settings.vcenters, as_json=args.json, catalog=catalog))
            return _print((text, code))
    except (StoreError, InventoryError, ConfigError, LogRuleError, MatchRuleError, InhibitRuleError) as exc:
        print(f"esxbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2
