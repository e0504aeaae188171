"""bot.actions.redfish against the real sushy-tools emulator (fake driver), plus its BMC front for the cases
the fake driver cannot show: a guest that ignores GracefulShutdown, and session login."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.actions.bmc import BmcConfig, BmcDirectory
from bot.actions.redfish import ErrorKind, OffPath, PowerState, RedfishClient, RedfishError, ResetType
from bot.config import SecretRef
from bot.schema import ConfigError
from tests.fixtures.redfish import ROLES, SushyEmulator

# The forwarding front server opens one client session per request; when the loop closes right
# after a test, a keep-alive socket of it can be collected unclosed (seen once in ~10 runs).
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

# The fake driver applies a reset 1-11 s after it is requested, so 15 s covers every draw.
SETTLE = 15.0
PW_VAR = "ESXBOT_TEST_BMC_PASSWORD"
Front = Callable[..., Any]  # the bmc_front fixture: (hung_guest=, sessions=) -> async context


def bmc(
    url: str, *, serial: str | None = None, password: str = f"env:{PW_VAR}", timeout: float = 5.0
) -> BmcConfig:
    return BmcConfig(
        name="bmc-test",
        url=url,
        username="esxbot",
        password=SecretRef.parse(password),
        host="esx-test.lab.local",
        serial=serial,
        timeout=timeout,
    )


@pytest.fixture
def emu(sushy_emulator: SushyEmulator, monkeypatch: pytest.MonkeyPatch) -> SushyEmulator:
    monkeypatch.setenv(PW_VAR, sushy_emulator.password)
    return sushy_emulator


def client(url: str, serial: str | None = None) -> RedfishClient:
    return RedfishClient(bmc(url, serial=serial), poll_interval=0.2)


async def test_discovers_first_system_and_reads_power_and_resets(emu: SushyEmulator) -> None:
    async with client(emu.url) as c:
        system = await c.system()
    assert system.id in emu.systems.values()
    assert system.power_state in (PowerState.ON, PowerState.OFF)
    assert system.allowed_resets is not None
    assert {ResetType.ON, ResetType.FORCE_OFF, ResetType.GRACEFUL_SHUTDOWN} <= system.allowed_resets
    assert ResetType.POWER_CYCLE not in system.allowed_resets


async def test_discovers_system_by_uuid_case_insensitively(emu: SushyEmulator) -> None:
    wanted = emu.systems["readonly"]
    async with client(emu.url, serial=wanted.upper()) as c:
        system = await c.system()
        assert await c.power_state() is PowerState.ON
    assert (system.id, system.uuid, system.name) == (wanted, wanted, "esx-readonly")


async def test_unknown_serial_is_not_found(emu: SushyEmulator) -> None:
    async with client(emu.url, serial="NO-SUCH-TAG") as c:
        with pytest.raises(RedfishError) as err:
            await c.system()
    assert err.value.kind is ErrorKind.NOT_FOUND
    assert f"none of its {len(ROLES)} systems has serial/UUID NO-SUCH-TAG" in str(err.value)


async def test_disallowed_and_unknown_reset_types_are_refused_before_sending(emu: SushyEmulator) -> None:
    async with client(emu.url, serial=emu.systems["readonly"]) as c:
        with pytest.raises(RedfishError) as err:
            await c.reset(ResetType.POWER_CYCLE)
        assert err.value.kind is ErrorKind.REFUSED
        assert "PowerCycle is not allowed" in str(err.value)
        with pytest.raises(RedfishError) as err:
            await c.reset("rm -rf /")
        assert err.value.kind is ErrorKind.REFUSED
        assert await c.power_state() is PowerState.ON


async def test_reset_the_bmc_rejects_becomes_a_clean_error(emu: SushyEmulator) -> None:
    # The emulator advertises Nmi but its fake driver answers 501.
    async with client(emu.url, serial=emu.systems["readonly"]) as c:
        with pytest.raises(RedfishError) as err:
            await c.reset(ResetType.NMI)
    assert err.value.kind is ErrorKind.REFUSED
    assert "HTTP 501: Power state Nmi is not supported" in str(err.value)


async def test_graceful_shutdown_reaches_off(emu: SushyEmulator) -> None:
    async with client(emu.url, serial=emu.systems["graceful"]) as c:
        result = await c.graceful_then_force_off(graceful_timeout=SETTLE, force_timeout=SETTLE)
        assert await c.power_state() is PowerState.OFF
    assert result.path is OffPath.GRACEFUL
    assert result.force_seconds is None
    assert 0 < result.graceful_seconds <= result.total_seconds < SETTLE + 5


async def test_force_off_after_graceful_timeout_when_the_guest_ignores_it(
    emu: SushyEmulator, bmc_front: Front
) -> None:
    async with bmc_front(hung_guest=True) as (url, front), client(url, serial=emu.systems["forced"]) as c:
        result = await c.graceful_then_force_off(graceful_timeout=1.0, force_timeout=SETTLE)
        assert await c.power_state() is PowerState.OFF
        again = await c.graceful_then_force_off(graceful_timeout=1.0)
    assert front.dropped == [f"/redfish/v1/Systems/{emu.systems['forced']}/Actions/ComputerSystem.Reset"]
    assert result.path is OffPath.FORCED_AFTER_TIMEOUT
    assert 1.0 <= result.graceful_seconds < 2.0
    assert result.force_seconds is not None and 0 < result.force_seconds < SETTLE
    assert again.path is OffPath.ALREADY_OFF


async def test_power_on(emu: SushyEmulator) -> None:
    async with client(emu.url, serial=emu.systems["power-on"]) as c:
        assert await c.power_state() is PowerState.OFF
        waited = await c.power_on(timeout=SETTLE)
        assert await c.power_state() is PowerState.ON
        assert await c.power_on(timeout=SETTLE) == 0.0
    assert 0 < waited < SETTLE


async def test_wait_for_power_state_times_out_with_the_state_seen(emu: SushyEmulator) -> None:
    async with client(emu.url, serial=emu.systems["readonly"]) as c:
        with pytest.raises(RedfishError) as err:
            await c.wait_for_power_state(PowerState.OFF, timeout=0.5)
    assert err.value.kind is ErrorKind.TIMEOUT
    assert "still On after 0.5 s (waiting for Off)" in str(err.value)


async def test_wrong_password_is_a_clean_error_without_the_secret(
    emu: SushyEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wr0ng-Secret-Value-42"
    monkeypatch.setenv(PW_VAR, wrong)
    caplog.set_level(logging.DEBUG)
    c = client(emu.url)
    with pytest.raises(RedfishError) as err:
        async with c:
            await c.system()
    text = str(err.value)
    assert err.value.kind is ErrorKind.AUTH
    assert text == "BMC bmc-test: the BMC refused the configured credentials (HTTP 401)"
    for shown in (text, repr(err.value), repr(c), repr(c.config), caplog.text):
        assert wrong not in shown
        assert emu.password not in shown


async def test_session_login_when_offered_and_logout_on_close(
    emu: SushyEmulator, bmc_front: Front, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with bmc_front(sessions=True) as (url, front):
        async with client(url, serial=emu.systems["sessions"]) as c:
            assert await c.power_state() is PowerState.ON
            assert len(front.tokens) == 1
            assert "X-Auth-Token" in c._auth
        assert (front.tokens, front.deleted_sessions) == ({}, 1)
        with pytest.raises(RedfishError) as err:
            async with RedfishClient(bmc(url, password="env:ESXBOT_TEST_NO_SUCH_VAR")):
                pass
    assert err.value.kind is ErrorKind.CONFIG
    assert "Redfish session" in caplog.text
    assert emu.password not in caplog.text


async def test_wrong_password_with_sessions_is_refused(
    emu: SushyEmulator, bmc_front: Front, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PW_VAR, "not-it")
    async with bmc_front(sessions=True) as (url, _):
        with pytest.raises(RedfishError) as err:
            async with client(url):
                pass
    assert err.value.kind is ErrorKind.AUTH
    assert "not-it" not in str(err.value)


async def test_password_from_file_reference(emu: SushyEmulator, tmp_path: Path) -> None:
    secret = tmp_path / "bmc.pw"
    secret.write_text(emu.password + "\n")
    async with RedfishClient(bmc(emu.url, password=f"file:{secret}", serial=emu.systems["readonly"])) as c:
        assert (await c.system()).id == emu.systems["readonly"]
    missing = bmc(emu.url, password=f"file:{tmp_path / 'absent'}")
    with pytest.raises(RedfishError) as err:
        await RedfishClient(missing).open()
    assert err.value.kind is ErrorKind.CONFIG
    assert "No such file or directory" in str(err.value)


async def test_unreachable_bmc_fails_cleanly(emu: SushyEmulator) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RedfishError) as err:
        async with client(f"http://127.0.0.1:{port}"):
            pass
    assert err.value.kind is ErrorKind.UNREACHABLE
    assert f"cannot connect to 127.0.0.1:{port}" in str(err.value)


async def test_silent_bmc_times_out_within_the_request_timeout(emu: SushyEmulator) -> None:
    # A listening socket that never answers: the request timeout must end the wait.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(RedfishError) as err:
            await RedfishClient(bmc(f"http://127.0.0.1:{port}", timeout=0.5)).open()
        elapsed = time.monotonic() - start
    assert err.value.kind is ErrorKind.TIMEOUT
    assert "no answer to GET /redfish/v1/ within 0.5 s" in str(err.value)
    assert elapsed < 2.0


def test_secret_reference_parsing_never_echoes_the_value() -> None:
    assert str(SecretRef.parse("env:BMC_PW")) == "env:BMC_PW"
    for bad in ("hunter2", "vault:kv/bmc", "file:relative/pw"):
        with pytest.raises(ValueError) as err:
            SecretRef.parse(bad)
        assert bad not in str(err.value)
    with pytest.raises(ValueError):
        SecretRef.parse("env:")


def test_directory_finds_bmc_by_serial_or_host_name() -> None:
    entries = [
        {
            "name": "a",
            "url": "https://10.0.0.1",
            "username": "root",
            "password": "env:A",
            "host": "esx-01.lab",
        },
        {
            "name": "b",
            "url": "https://10.0.0.2/",
            "username": "root",
            "password": "file:/run/b",
            "serial": "CZ12",
        },
    ]
    directory = BmcDirectory.from_mappings(entries)
    assert [b.name for b in directory.bmcs] == ["a", "b"]
    assert directory.find(host_name="ESX-01") is directory.bmcs[0]
    assert directory.find(host_name="esx-01.lab.") is directory.bmcs[0]
    assert directory.find(host_name="esx-02", serial="cz12") is directory.bmcs[1]
    assert directory.find(host_name="esx-02.lab") is None
    assert directory.bmcs[1].url == "https://10.0.0.2"


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ({"password": "s3cr3t-literal"}, "bmcs[1].password: expected a secret reference"),
        ({"url": "https://root:pw@10.0.0.4"}, "bmcs[1]: BMC c: put credentials in username/password"),
        ({"name": "a"}, "bmcs[1].name: duplicate BMC name 'a'"),
        ({"name": None, "username": None}, "bmcs[1]: a BMC needs a name and a username"),
        ({"timeout": "soon"}, "bmcs[1].timeout: expected a duration"),
        ({"passwd": "env:X"}, "bmcs[1].passwd: unknown setting (did you mean password?)"),
    ],
)
def test_a_bad_bmc_entry_is_a_configuration_error(entry: dict[str, object], needle: str) -> None:
    good = {"name": "a", "url": "https://10.0.0.1", "username": "root", "password": "env:A"}
    bad = {"name": "c", "url": "https://10.0.0.3", "username": "root", "password": "env:C", **entry}
    with pytest.raises(ConfigError) as err:
        BmcDirectory.from_mappings([good, bad])
    assert needle in str(err.value)
    assert "s3cr3t" not in str(err.value) and "pw@" not in str(err.value)


def test_config_repr_holds_only_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW_VAR, "Sup3r-Secret")
    config = bmc("https://10.0.0.9")
    assert "Sup3r-Secret" not in repr(config)
    assert f"target='{PW_VAR}'" in repr(config)


async def test_unreadable_ca_file_is_a_config_error(emu: SushyEmulator, tmp_path: Path) -> None:
    config = BmcConfig(
        "bmc-tls",
        "https://127.0.0.1:1",
        "esxbot",
        SecretRef.parse(f"env:{PW_VAR}"),
        ca_file=str(tmp_path / "none.pem"),
    )
    with pytest.raises(RedfishError) as err:
        await RedfishClient(config).open()
    assert (err.value.kind, err.value.detail) == (
        ErrorKind.CONFIG,
        f"cannot load CA file {tmp_path / 'none.pem'}",
    )
