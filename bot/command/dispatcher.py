"""``Command → Reply``: find, authorize, parse, confirm-or-run, audit, map errors. Never raises.

Every command, run or refused, leaves one audit row. Commands declared ``confirm=True`` first answer
with a preview and a token; ``yes <token>`` from the right person runs them (see ``_Gate``).
An unexpected exception becomes "Internal error (ref …)" with the traceback in the log.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.command.auth import Policy, Role
from bot.command.context import Context
from bot.command.grammar import BadArgument, closest, tokenize
from bot.command.paging import paged
from bot.command.services import Services
from bot.command.spec import CommandError, CommandSpec, Handler, bind
from bot.messages import Command, Confirm, Reply, Style, Text, User
from bot.store.confirmations import Proposal

log = logging.getLogger(__name__)

_TOKEN_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # noqa: S105 - no 0/o/1/l/i: read aloud and typed on phones


def new_token() -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(8))


def new_ref() -> str:
    return secrets.token_hex(4)


class Dispatcher:
    def __init__(
        self,
        specs: Mapping[str, CommandSpec],
        services: Services,
        policy: Policy,
        *,
        on_outcome: Callable[[str, str], None] | None = None,
    ) -> None:
        self.specs = specs
        self.services = services
        self.policy = policy
        self.on_outcome = on_outcome  # (command name, outcome) for metrics
        self._outcome: ContextVar[str] = ContextVar(f"esxbot_outcome_{id(self)}", default="-")

    def role_of(self, user: User) -> Role:
        return self.policy.role_of(user.id)

    def visible_specs(self, role: Role) -> list[CommandSpec]:
        unique = {id(s): s for s in self.specs.values()}
        return sorted((s for s in unique.values() if s.role <= role), key=lambda s: s.name)

    def spec_for(self, text: str) -> CommandSpec | None:
        words = text.split(maxsplit=1)
        return self.specs.get(words[0].lower()) if words else None

    def is_mutating(self, text: str) -> bool:
        """Whether running this text may change a host (a stale copy must then not run)."""
        spec = self.spec_for(text)
        if spec is not None and spec.name == "yes":
            return True
        return spec is not None and spec.mutating

    async def handle(self, command: Command, *, ref: str | None = None) -> Reply:
        """``ref`` (the log's correlation id, when the caller has one) names the command in the audit,
        in "Internal error (ref …)" and in the one log line every command leaves."""
        ref = ref or new_ref()
        started = time.monotonic()
        self._outcome.set("-")
        try:
            return await self._handle(command, ref)
        except Exception:
            log.exception("internal error (ref %s) on %r from %s", ref, command.text[:200], command.user.id)
            await self._audit(command, None, "error", "internal error", ref)
            return Reply.error(f"Internal error (ref {ref}). The details are in the bot's log.")
        finally:
            words = command.text.split(maxsplit=1)
            log.info(
                "command %s by %s in %s: %s (%.0f ms, ref %s)",
                words[0][:40].lower() if words else "-",
                command.user.id,
                command.conversation.key,
                self._outcome.get(),
                (time.monotonic() - started) * 1000,
                ref,
            )

    async def _handle(self, command: Command, ref: str) -> Reply:
        try:
            words = tokenize(command.text)
        except BadArgument as exc:
            await self._audit(command, None, "bad-arguments", str(exc), ref)
            return Reply.error(f"Cannot read that command: {exc}")
        if not words:
            return Reply.text(f"Say `{command.form('help')}` to see what I can do.")
        role = self.role_of(command.user)
        spec = self.specs.get(words[0].lower())
        if spec is None:
            await self._audit(command, None, "unknown-command", words[0][:80], ref)
            names = [s.name for s in self.visible_specs(role)] or list(self.specs)
            guess = closest(words[0], names)
            hint = f" Did you mean `{command.form(guess)}`?" if guess else ""
            help_ = command.form("help")
            return Reply.error(f"Unknown command `{words[0][:40]}`.{hint} Say `{help_}` for the list.")
        ctx = Context(command=command, role=role, services=self.services, gate=_Gate(self, command, role))
        return await self._run(spec, ctx, words[1:], ref)

    async def _run(self, spec: CommandSpec, ctx: Context, words: list[str], ref: str) -> Reply:
        command = ctx.command
        if ctx.role < spec.role or ctx.role == Role.NOBODY:
            await self._audit(
                command, spec.name, "denied", f"needs {spec.role.label}, has {ctx.role.label}", ref
            )
            return Reply.error(
                f"`{spec.name}` needs the {spec.role.label} role; you have {ctx.role.label}. "
                "Ask an admin to grant it in the bot's configuration."
            )
        try:
            args, kwargs = await bind(spec, ctx, words)
            if spec.confirm and ctx.confirmed_by is None:
                return await self._propose(spec, ctx, args, kwargs, ref)
            if ctx.approved is not None and spec.preview is not None:
                await self._recheck(spec.preview, ctx, args, kwargs)
            reply = await paged(
                await spec.handler(ctx, *args, **kwargs),
                self.services.store.kv,
                command.conversation,
                command.form,
            )
        except BadArgument as exc:
            await self._audit(command, spec.name, "bad-arguments", str(exc), ref)
            return Reply.error(f"{exc}\nUsage: `{command.form(spec.usage())}`")
        except CommandError as exc:
            await self._audit(command, spec.name, "failed", str(exc), ref)
            return Reply.error(str(exc))
        outcome = "confirmed" if ctx.confirmed_by is not None else ("ok" if reply.ok else "failed")
        detail = f"confirmed by {ctx.confirmed_by.id}" if ctx.confirmed_by else None
        await self._audit(command, spec.name, outcome, detail, ref)
        return reply

    async def _recheck(
        self, preview: Handler, ctx: Context, args: list[object], kwargs: dict[str, object]
    ) -> None:
        """After ``yes``: the pre-checks again, and the plan they give must be the one shown."""
        again = await preview(replace(ctx, preview=True), *args, **kwargs)
        if not again.ok:
            raise CommandError(f"Refused, nothing was done: {again.summary}")
        changes = plan_changes(ctx.approved or {}, again.data.get("plan") or {})
        if changes:
            raise CommandError(
                "Refused, nothing was done: the plan changed since the preview: "
                + "; ".join(changes)
                + ". Run the command again to see the new plan."
            )

    async def _propose(
        self, spec: CommandSpec, ctx: Context, args: list[object], kwargs: dict[str, object], ref: str
    ) -> Reply:
        settings = self.services.settings
        preview = (
            await spec.preview(replace(ctx, preview=True), *args, **kwargs)
            if spec.preview
            else Reply.text(f"About to run `{ctx.command.form(ctx.command.text)}`.")
        )
        if not preview.ok:
            await self._audit(ctx.command, spec.name, "failed", preview.summary[:200], ref)
            return preview
        now = self.services.clock.now()
        token = new_token()
        proposal = Proposal(
            token=token,
            user_id=ctx.user.id,
            conversation=ctx.command.conversation.key,
            command=spec.name,
            text=ctx.command.text,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.confirm_ttl),
            second_person=settings.auth.two_person,
            state="pending",
            plan=preview.data.get("plan"),
        )
        await self.services.store.confirmations.create(proposal)
        await self._audit(ctx.command, spec.name, "confirm-pending", f"token {token}", ref)
        who = "Another operator must confirm" if proposal.second_person else "Confirm"
        minutes = max(1, settings.confirm_ttl // 60)
        # the prompt names no command form: each renderer adds the ones its platform accepts
        prompt = f"{who} within {minutes} min; the token works once."
        confirm = Confirm(token=token, prompt=prompt, expires_at=proposal.expires_at, danger=spec.mutating)
        answer = ctx.command.form(f"yes {token}")
        return replace(
            preview,
            summary=f"{preview.summary}\n{prompt} Answer `{answer}`.",
            blocks=(*preview.blocks, confirm),
            data={**preview.data, "confirm": {"token": token, "expires_at": proposal.expires_at.isoformat()}},
        )

    async def _audit(
        self, command: Command, name: str | None, outcome: str, detail: str | None, ref: str
    ) -> None:
        self._outcome.set(outcome)
        if self.on_outcome is not None:
            self.on_outcome(name or "-", outcome)
        try:
            await self.services.store.audit.record(
                at=self.services.clock.now(),
                user_id=command.user.id,
                conversation=command.conversation.key,
                text=command.text[:500],
                command=name,
                outcome=outcome,
                detail=detail,
                ref=ref,
            )
        except Exception:
            log.exception("could not write the audit row (ref %s) for %s", ref, command.user.id)


class _Gate:
    """Confirmation answers for one incoming command (``yes``/``no``, a button, a reaction)."""

    def __init__(self, dispatcher: Dispatcher, command: Command, role: Role) -> None:
        self._d = dispatcher
        self._command = command
        self._role = role

    async def _load(self, token: str) -> tuple[Proposal | None, str | None]:
        repo = self._d.services.store.confirmations
        proposal = await repo.get(token.strip().lower())
        if proposal is None or proposal.conversation != self._command.conversation.key:
            return None, f"No pending confirmation `{token[:20]}` here."
        if proposal.state != "pending":
            return None, f"Confirmation `{proposal.token}` was already {proposal.state}; it works once."
        now = self._d.services.clock.now()
        if now > proposal.expires_at:
            await repo.decide(proposal.token, "expired", by="clock", at=now)
            return None, f"Confirmation `{proposal.token}` expired; run the command again."
        return proposal, None

    async def accept(self, token: str) -> Reply:
        proposal, problem = await self._load(token)
        if proposal is None:
            raise CommandError(problem or "No such confirmation.")
        user = self._command.user
        spec = self._d.specs.get(proposal.command)
        if spec is None:
            raise CommandError(f"The command `{proposal.command}` no longer exists.")
        if proposal.second_person:
            if user.id == proposal.user_id:
                raise CommandError("This action needs a second operator to confirm it, not its requester.")
            if self._role < spec.role:
                raise CommandError(f"Confirming `{spec.name}` needs the {spec.role.label} role.")
        elif user.id != proposal.user_id:
            raise CommandError(f"Only {proposal.user_id} can confirm `{proposal.token}`.")
        now = self._d.services.clock.now()
        if not await self._d.services.store.confirmations.decide(
            proposal.token, "accepted", by=user.id, at=now
        ):
            raise CommandError(f"Confirmation `{proposal.token}` was already used.")
        original = Command(
            user=User(proposal.user_id),
            conversation=self._command.conversation,
            text=proposal.text,
            message_id=self._command.message_id,
            sent_at=self._command.sent_at,
        )
        role = self._d.role_of(original.user)
        ctx = Context(
            command=original,
            role=role,
            services=self._d.services,
            gate=_Gate(self._d, original, role),
            confirmed_by=user,
            approved=proposal.plan,
        )
        return await self._d._run(spec, ctx, tokenize(proposal.text)[1:], new_ref())

    async def decline(self, token: str) -> Reply:
        proposal, problem = await self._load(token)
        if proposal is None:
            raise CommandError(problem or "No such confirmation.")
        user = self._command.user
        if user.id != proposal.user_id and self._role < Role.OPERATOR:
            raise CommandError(f"Only {proposal.user_id} or an operator can drop `{proposal.token}`.")
        now = self._d.services.clock.now()
        await self._d.services.store.confirmations.decide(proposal.token, "declined", by=user.id, at=now)
        text = f"Dropped `{self._command.form(proposal.text)}`."
        return Reply(summary=text, blocks=(Text(text, Style.WARNING),))


def plan_changes(shown: Mapping[str, Any], now: Mapping[str, Any], path: str = "") -> list[str]:
    """What differs between two plans, as ``where: before → after`` phrases."""
    changes: list[str] = []
    for key in sorted(set(shown) | set(now)):
        where = f"{path}.{key}" if path else str(key)
        before, after = shown.get(key), now.get(key)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            changes += plan_changes(before, after, where)
        elif before != after:
            changes.append(f"{where}: {before} → {after}")
    return changes
