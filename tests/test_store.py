"""The storage suite, run once on SQLite and once on a real PostgreSQL: migrations and every repository."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.model import AlertState, Severity
from bot.store.alert_groups import GroupRepo
from bot.store.alert_records import AlertRepo, SilenceRepo
from bot.store.audit import AuditRepo
from bot.store.confirmations import ConfirmationRepo, Proposal
from bot.store.inbound import InboundRepo
from bot.store.kv import KeyValueRepo
from bot.store.outbox_records import OutboxRepo
from bot.store.sql.base import Database, StoreError
from bot.store.sql.connect import open_database
from bot.store.sql.migrate import Migration, bundled_migrations, migrate
from bot.store.sql.postgres import translate
from bot.store.subscriptions import SubscriptionRepo

T0 = datetime(2021, 8, 24, 12, 0, tzinfo=UTC)
Opener = Callable[[], Awaitable[Database]]


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the same database again on each call (SQLite file or PostgreSQL database)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_url")

    async def open_() -> Database:
        return await open_database(url)

    return open_


@pytest.fixture
async def db(opener: Opener) -> AsyncIterator[Database]:
    database = await opener()
    await migrate(database)
    yield database
    await database.close()


def test_placeholder_translation_skips_quoted_text_and_comments() -> None:
    sql = "SELECT '?', \"a?\", x FROM t WHERE a = ? AND b LIKE 'x%' -- why?\n AND c = ? /* ? */"
    assert translate(sql) == (
        "SELECT '?', \"a?\", x FROM t WHERE a = %s AND b LIKE 'x%%' -- why?\n AND c = %s /* ? */"
    )
    assert translate("SELECT 'it''s ?' , ?") == "SELECT 'it''s ?' , %s"
    assert translate("SELECT $$ ? $$, $f$ ? $f$, ?") == "SELECT $$ ? $$, $f$ ? $f$, %s"


async def test_migrations_fresh_existing_and_newer_refused(opener: Opener) -> None:
    db = await opener()
    assert await migrate(db) == [m.version for m in bundled_migrations()]
    await KeyValueRepo(db).set("k", "v")
    await db.close()
    db = await opener()
    try:
        assert await migrate(db) == []
        assert await KeyValueRepo(db).get("k") == "v"
        rows = await db.fetchall("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [
            (m.version, m.name) for m in bundled_migrations()
        ]
        later = Migration(9000, "later", "CREATE TABLE later_table (id {pk}, at {ts}, n {int});")
        assert await migrate(db, [*bundled_migrations(), later]) == [9000]
        await db.execute("INSERT INTO later_table (at, n) VALUES (?, ?)", (1.5, 2))
        assert await db.fetchall("SELECT id, at, n FROM later_table") == [{"id": 1, "at": 1.5, "n": 2}]
        with pytest.raises(StoreError, match="upgrade esxbot"):
            await migrate(db)
    finally:
        await db.close()


async def test_failing_migration_leaves_no_half_version(db: Database) -> None:
    broken = Migration(9001, "broken", "CREATE TABLE half (id {pk});\nINSERT INTO nowhere VALUES (1);")
    with pytest.raises(Exception, match="nowhere"):
        await migrate(db, [*bundled_migrations(), broken])
    versions = {r["version"] for r in await db.fetchall("SELECT version FROM schema_migrations")}
    assert 9001 not in versions
    with pytest.raises(Exception, match="half"):
        await db.fetchall("SELECT * FROM half")


async def test_booleans_and_percent_signs_pass_through(db: Database) -> None:
    await db.execute(
        "INSERT INTO confirmations (token, user_id, conversation, command, text, created_at, expires_at,"
        " second_person) VALUES (?, 'u', 'c', 'patch', '100% sure?', 0, 1, ?)",
        ("t1", True),
    )
    row = await db.fetchone("SELECT second_person, text FROM confirmations WHERE token = ?", ("t1",))
    assert row == {"second_person": 1, "text": "100% sure?"}
    assert await db.fetchone("UPDATE kv SET value = 'x' WHERE key = 'none'") is None


async def test_transaction_commits_rolls_back_and_nests_flat(db: Database) -> None:
    kv = KeyValueRepo(db)
    async with db.transaction():
        await kv.set("a", "1")
        async with db.transaction():
            await kv.set("b", "2")
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await kv.set("c", "3")
            async with db.transaction():
                await kv.set("d", "4")
            raise RuntimeError("boom")
    assert [await kv.get(k) for k in "abcd"] == ["1", "2", None, None]


async def test_transactions_do_not_interleave_between_tasks(db: Database) -> None:
    kv = KeyValueRepo(db)
    await kv.set("n", "0")

    async def bump() -> None:
        async with db.transaction():
            row = await db.fetchone("SELECT value FROM kv WHERE key = ?", ("n",))
            assert row is not None
            await asyncio.sleep(0)
            await kv.set("n", str(int(row["value"]) + 1))

    await asyncio.gather(*(bump() for _ in range(10)))
    assert await kv.get("n") == "10"


async def test_audit(db: Database) -> None:
    repo = AuditRepo(db)
    for i, user in enumerate(["slack:U1", "slack:U2", "slack:U1"]):
        await repo.record(
            at=T0 + timedelta(seconds=i), user_id=user, conversation="slack:C1", text=f"check {i}",
            command="check", outcome="ok", detail="50% done" if i == 2 else None,
        )  # fmt: skip
    recent = await repo.recent(2)
    assert [e.text for e in recent] == ["check 2", "check 1"]
    assert recent[0].at == T0 + timedelta(seconds=2)
    assert recent[0].detail == "50% done"
    assert [e.text for e in await repo.recent(10, user_id="slack:U1")] == ["check 2", "check 0"]


async def test_confirmation_decides_once(db: Database) -> None:
    repo = ConfirmationRepo(db)
    proposal = Proposal(
        token="abc", user_id="slack:U1", conversation="slack:C1", command="patch", text="patch esx01",
        created_at=T0, expires_at=T0 + timedelta(minutes=5), second_person=True, state="pending",
        plan={"options": {"target_build": 18426014}, "hosts": {"esx01": {"cluster": "c1"}}},
    )  # fmt: skip
    await repo.create(proposal)
    await repo.attach_message("abc", "1629806400.000100")
    results = await asyncio.gather(
        *(repo.decide("abc", "accepted", by=f"slack:U{i}", at=T0) for i in range(5))
    )
    assert sorted(results) == [False, False, False, False, True]
    assert not await repo.decide("abc", "declined", by="slack:U9", at=T0)
    stored = await repo.by_message("1629806400.000100")
    assert stored is not None
    assert (stored.state, stored.second_person, stored.expires_at) == ("accepted", True, proposal.expires_at)
    assert stored.plan == proposal.plan  # the plan the preview showed, as it was stored
    assert await repo.get("missing") is None


async def test_subscriptions(db: Database) -> None:
    repo = SubscriptionRepo(db)
    assert await repo.add("slack:C1", "releases", by="slack:U1", at=T0)
    assert not await repo.add("slack:C1", "releases", by="slack:U2", at=T0)
    assert await repo.add("matrix:!r:hs", "releases", by="matrix:@a:hs", at=T0)
    assert await repo.add("slack:C1", "alerts", by="slack:U1", at=T0)
    assert await repo.rooms("releases") == ["slack:C1", "matrix:!r:hs"]
    assert await repo.topics("slack:C1") == ["alerts", "releases"]
    assert await repo.remove("slack:C1", "releases")
    assert not await repo.remove("slack:C1", "releases")
    assert await repo.rooms("releases") == ["matrix:!r:hs"]


async def test_inbound_claims_once(db: Database) -> None:
    repo = InboundRepo(db)
    claims = await asyncio.gather(*(repo.claim("slack", "Ev1", at=T0) for _ in range(4)))
    assert sorted(claims) == [False, False, False, True]
    assert await repo.claim("matrix", "Ev1", at=T0)
    assert await repo.claim("slack", "Ev2", at=T0 + timedelta(hours=2))
    assert await repo.prune(T0 + timedelta(hours=1)) == 2
    assert await repo.claim("slack", "Ev1", at=T0 + timedelta(hours=3))
    assert not await repo.claim("slack", "Ev2", at=T0 + timedelta(hours=3))


async def test_kv(db: Database) -> None:
    repo = KeyValueRepo(db)
    assert await repo.get("matrix.next_batch") is None
    await repo.set("matrix.next_batch", "s1")
    await repo.set("matrix.next_batch", "s2")
    assert await repo.get("matrix.next_batch") == "s2"
    await repo.delete("matrix.next_batch")
    assert await repo.get("matrix.next_batch") is None


async def test_outbox_order_retry_and_sent(db: Database) -> None:
    repo = OutboxRepo(db)

    async def add(room: str, key: str | None, now: float) -> int | None:
        return await repo.add(platform="slack", room=room, payload=f'{{"k": "{key}"}}', now=now, key=key)

    a1 = await add("C1", "a1", 100.0)
    a2 = await add("C1", "a2", 101.0)
    b1 = await add("C2", None, 102.0)
    await repo.add(platform="matrix", room="!r", payload="{}", now=103.0)
    assert await add("C1", "a1", 104.0) is None  # idempotent enqueue
    assert a1 is not None and a2 is not None and b1 is not None
    assert [r.id for r in await repo.due("slack", 200.0)] == [a1, b1]
    assert await repo.stats(110.0) == (4, 10.0)

    await repo.mark_retry(a1, "429 ratelimited", 300.0)
    assert [r.id for r in await repo.due("slack", 200.0)] == [b1]  # a2 waits behind a1's first retries
    due = await repo.due("slack", 300.0)
    assert [(r.id, r.attempts) for r in due] == [(a1, 1), (b1, 0)]

    await repo.mark_sent(a1, "1629806400.000100", 301.0)
    await repo.mark_failed(b1, "channel_not_found")
    assert [r.id for r in await repo.due("slack", 400.0)] == [a2]
    assert await repo.message_id("a1") == "1629806400.000100"
    assert await repo.message_id("a2") is None
    assert await repo.stats(401.0) == (2, 300.0)
    assert await repo.next_due_at("slack") == 101.0
    assert await repo.next_due_at("teams") is None

    edit = await repo.add(platform="slack", room="C1", payload="{}", now=402.0, key="a2/1", edit_of="a2")
    await repo.mark_retry(a2, "HTTP 500", 500.0)
    assert [r.id for r in await repo.due("slack", 450.0)] == []  # an edit waits for its own message
    await repo.mark_failed(a2, "HTTP 500")
    assert [r.id for r in await repo.due("slack", 450.0)] == [edit]
    assert await repo.chain_message_id("a2") is None  # never sent: the edit goes out as a new message


async def test_alert_groups_labels_and_matcher_silences(db: Database) -> None:
    alerts, groups, silences = AlertRepo(db), GroupRepo(db), SilenceRepo(db)
    labels = {"host": "esx01", "kind": "bootbank-loss", "cluster": "prod-a"}
    rec = await alerts.insert(
        host="esx01",
        kind="bootbank-loss",
        severity=Severity.CRITICAL,
        summary="esx01 lost its bootbank",
        detail="",
        device=None,
        source="test",
        now=1.0,
        next_step_at=1.0,
        labels=labels,
    )
    assert rec is not None and rec.labels == labels and rec.group_id is None
    key = "kind=bootbank-loss,cluster=prod-a"
    group, new = await groups.open_or_insert(
        key, {"cluster": "prod-a"}, Severity.CRITICAL, now=1.0, first_step_at=2.0
    )
    again, new_again = await groups.open_or_insert(key, {}, Severity.WARNING, now=5.0, first_step_at=9.0)
    assert new and not new_again and again.id == group.id and again.labels == {"cluster": "prod-a"}
    assert await alerts.cas(rec.id, rec.version, group_id=group.id, state=AlertState.FIRING)
    assert [m.id for m in await alerts.members(group.id)] == [rec.id]
    assert [g.id for g in await groups.due(2.0)] == [group.id] and await groups.next_due_at() == 2.0
    assert await groups.cas(group.id, group.version, next_step_at=None, update_at=3.0, shown={"1": "down"})
    assert not await groups.cas(group.id, group.version, state=AlertState.RESOLVED)  # stale
    fresh = await groups.get(group.id)
    assert fresh is not None and fresh.shown == {"1": "down"} and await groups.next_due_at() == 3.0
    assert await groups.cas(group.id, fresh.version, state=AlertState.RESOLVED, update_at=None)
    reopened, opened = await groups.open_or_insert(key, {}, Severity.CRITICAL, now=9.0, first_step_at=9.0)
    assert opened and reopened.id != group.id  # one open group per key, a new one after resolution

    made = await silences.add(
        matchers={"cluster": ("prod-a",), "kind": ("bootbank-*",)},
        ends_at=T0 + timedelta(hours=2),
        reason="usb",
        by="ann",
        now=T0,
    )
    await db.execute(  # a silence of the old form: one host, no matchers
        "INSERT INTO silences (host, kind, starts_at, ends_at, reason, created_by, created_at)"
        " VALUES ('esx02', NULL, ?, ?, '', 'bob', ?)",
        (T0.timestamp(), (T0 + timedelta(hours=1)).timestamp(), T0.timestamp()),
    )
    active = await silences.active(T0 + timedelta(minutes=1))
    assert [s.matchers for s in active] == [
        {"host": ("esx02",)},
        {"cluster": ("prod-a",), "kind": ("bootbank-*",)},
    ]
    ended = await silences.cancel(made.id, by="cy", now=T0 + timedelta(minutes=5))
    assert ended is not None and ended.id == made.id
    assert await silences.cancel(made.id, by="cy", now=T0 + timedelta(minutes=6)) is None
    assert await silences.cancel_host("esx02", by="cy", now=T0 + timedelta(minutes=6)) == 1
    assert await silences.active(T0 + timedelta(minutes=7)) == []


async def test_outbox_a_failing_card_holds_back_neither_pages_nor_for_long_the_rest(db: Database) -> None:
    repo = OutboxRepo(db)

    async def add(key: str, now: float, edit_of: str | None = None) -> int:
        row = await repo.add(platform="slack", room="C1", payload="{}", now=now, key=key, edit_of=edit_of)
        assert row is not None
        return row

    card = await add("job-1-progress", 100.0)
    first, second = (
        await add("job-1-progress/1", 101.0, card_key := "job-1-progress"),
        await add("job-1-progress/2", 102.0, card_key),
    )
    page = await add("alert:7:page@slack:C1", 103.0)
    note = await add("release:123@slack:C1", 104.0)
    assert [r.id for r in await repo.due("slack", 200.0)] == [card]  # in order while nothing failed
    await repo.mark_retry(card, "HTTP 500", 900.0)
    # the card's edits wait for it; the page goes; an ordinary row waits out the card's first retries
    assert [r.id for r in await repo.due("slack", 200.0)] == [page]
    await repo.mark_sent(page, "p1", 201.0)
    assert await repo.next_due_at("slack") == 900.0  # no busy loop on rows that cannot go
    await repo.mark_retry(card, "HTTP 500", 950.0)
    await repo.mark_retry(card, "HTTP 500", 990.0)  # third failure: moved aside
    assert [r.id for r in await repo.due("slack", 300.0)] == [note]
    await repo.mark_sent(card, "c1", 991.0)
    assert [r.id for r in await repo.due("slack", 992.0)] == [first]  # the room's order again
    await repo.mark_sent(first, "c1", 993.0)
    assert [r.id for r in await repo.due("slack", 994.0)] == [second]
