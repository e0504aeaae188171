"""Role globs against forged user ids: ``*`` does not cross ``:``, ill-formed ids get no role at all."""

from __future__ import annotations

import pytest

from bot.command.auth import Policy, Role, well_formed
from tests.fixtures.bot import MakeBot

ROLES = {"matrix:@*:example.org": "operator", "matrix:@ann:example.org": "admin", "slack:U1": "admin"}


async def test_a_server_name_smuggled_past_the_glob_gets_nothing(make_bot: MakeBot) -> None:
    bot = await make_bot(roles=ROLES, demo=True)
    forged = await bot.say("power off esx01", as_user="matrix:@x:evil.com:example.org")
    assert not forged.ok and "operator" in forged.summary
    local = await bot.say("hosts", as_user="matrix:@bob:example.org")
    assert local.ok


@pytest.mark.parametrize(
    ("user", "role"),
    [
        ("matrix:@x:evil.com:example.org", Role.NOBODY),  # "*" would have run over "x:evil.com"
        ("matrix:@bob:example.org", Role.OPERATOR),
        ("matrix:@ann:example.org", Role.ADMIN),
        ("matrix:@bob:example.org:8448", Role.VIEWER),  # another server: the default
        ("matrix:@:example.org", Role.NOBODY),
        ("matrix:@a b:example.org", Role.NOBODY),
        ("matrix:@bob:example.org\n", Role.NOBODY),
        ("slack:U1", Role.ADMIN),
        ("slack:U1:U2", Role.NOBODY),
        ("slack:", Role.NOBODY),
        ("console:ann", Role.VIEWER),
        ("console:a:b", Role.NOBODY),
        ("U1", Role.NOBODY),
    ],
)
def test_ids_are_checked_before_matching(user: str, role: Role) -> None:
    assert Policy.from_config(ROLES).role_of(user) is role


def test_star_stays_inside_one_part_of_the_id() -> None:
    policy = Policy.from_config(
        {"matrix:@*:*": "operator", "console:ad?in": "admin", "console:[!a]*": "viewer"}
    )
    assert policy.role_of("matrix:@x:evil.com") is Role.OPERATOR
    assert policy.role_of("matrix:@x:evil.com:8448") is Role.VIEWER  # needs "matrix:@*:*:*"
    assert policy.role_of("console:admin") is Role.ADMIN
    assert policy.role_of("console:bob") is Role.VIEWER
    assert well_formed("matrix:@ops-bot:[::1]:8448")
