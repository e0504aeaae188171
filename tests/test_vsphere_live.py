"""VSphere against vcsimlab: the "Done when" list of issue 4 over real SOAP and TLS."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable

import pytest

from bot.builds import BuildCatalog
from bot.config import Secret, VCenterSettings
from bot.model import BootKind, ConnectionState
from bot.vsphere.client import VSphere
from bot.vsphere.dump import dump_inventory
from bot.vsphere.host_retrieval import release_lookup
from bot.vsphere.session import Endpoint, PinMismatch
from bot.vsphere.soap import MoRef, method_request
from tests.fixtures.vcsim import Vcsim, VcsimFactory


def _endpoint(lab: Vcsim, **tls: str | bool) -> Endpoint:
    return Endpoint("vc1", lab.host, lab.user, lab.password, port=lab.port, timeout=5, **tls)  # type: ignore[arg-type]


def _vsphere(lab: Vcsim, **tls: str | bool) -> VSphere:
    return VSphere(
        _endpoint(lab, **tls),
        release=release_lookup(BuildCatalog.bundled()),
        wait_seconds=1,
        backoff=(0.1, 0.5),
    )


@pytest.fixture
async def live(vcsim: Vcsim) -> AsyncIterator[VSphere]:
    vc = _vsphere(vcsim, ca_file=str(vcsim.ca_file))
    await vc.refresh()
    yield vc
    await vc.close()


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_usb_booted_7u2a_host(live: VSphere) -> None:
    host = live.get("esx-usb-01")
    assert host is not None
    assert host.boot_device.kind is BootKind.USB
    assert (host.boot_device.adapter, host.boot_device.driver) == ("vmhba32", "vmkusb")
    assert host.boot_device.device == "mpx.vmhba32:C0:T0:L0"
    assert (host.build, host.version, host.release_name) == (17867351, "7.0.2", "ESXi 7.0 Update 2a")
    assert (host.vendor, host.model, host.serial) == ("HPE", "ProLiant DL380 Gen10", "CZJ1234XYZ")
    assert (host.datacenter, host.cluster, host.vcenter) == ("dc1", "prod", "vc1")
    assert host.bootbank_mounted is True


async def test_disk_booted_host(live: VSphere) -> None:
    host = live.get("esx-disk-02.lab.local")
    assert host is not None
    assert host.boot_device.kind is BootKind.DISK
    assert host.boot_device.device == "naa.600508b1001c5a1e"
    assert host.release_name == "ESXi 7.0 Update 3n"
    assert host.serial == "SN-DISK-02"


async def test_unmounted_bootbank_and_disconnected_host(live: VSphere) -> None:
    lost = live.get("esx-bootbank-03")
    down = live.get("esx-down-04")
    assert lost is not None and down is not None
    assert lost.bootbank_mounted is False
    assert lost.overall_status == "yellow"
    assert any("backing the boot filesystem" in issue for issue in lost.config_issues)
    assert down.connection_state is ConnectionState.DISCONNECTED
    assert len(live.hosts()) == 8
    assert live.status().connected


async def test_changes_arrive_through_wait_for_updates(vcsim_factory: VcsimFactory) -> None:
    lab = vcsim_factory()
    vc = _vsphere(lab, ca_file=str(lab.ca_file))
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(vc.run())
        await _until(lambda: len(vc.hosts()) == 8)
        lab.hook("bootbank-lost", host="esx-usb-01.lab.local")
        lab.hook("connection", host="esx-disk-02.lab.local", state="notResponding")

        def changed() -> bool:
            usb, disk = vc.get("esx-usb-01"), vc.get("esx-disk-02")
            return bool(
                usb and disk and usb.bootbank_mounted is False and disk.connection_state == "notResponding"
            )

        await _until(changed)
        task.cancel()
    await vc.close()


async def test_outage_is_logged_answers_go_stale_and_recover(
    vcsim_factory: VcsimFactory, caplog: pytest.LogCaptureFixture
) -> None:
    lab = vcsim_factory()
    vc = _vsphere(lab, ca_file=str(lab.ca_file))
    caplog.set_level(logging.WARNING, logger="esxbot.vsphere")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(vc.run())
        await _until(lambda: vc.status().connected)
        await asyncio.to_thread(lab.stop)
        await _until(lambda: not vc.status().connected)
        await asyncio.sleep(0.3)
        status = vc.status()
        assert status.outage_since is not None and status.error
        assert status.age_seconds is not None and status.age_seconds > 0.2
        (fresh,) = vc.freshness()
        assert fresh.stale and fresh.error and "unreachable" in fresh.error
        assert vc.get("esx-usb-01") is not None and len(vc.hosts()) == 8  # last snapshot still answers
        assert "vCenter vc1 unreachable" in caplog.text
        await asyncio.to_thread(lab.start)
        lab.hook("connection", host="esx-disk-02.lab.local", state="notResponding")
        await _until(lambda: vc.status().connected, timeout=10)
        await _until(lambda: getattr(vc.get("esx-disk-02"), "connection_state", None) == "notResponding")
        assert "vCenter vc1 is back" in caplog.text
        assert not vc.freshness()[0].stale
        task.cancel()
    await vc.close()


async def test_tls_ca_file_and_thumbprint(vcsim_factory: VcsimFactory) -> None:
    lab = vcsim_factory(listen_host="127.0.0.2")  # pyvmomi skips verification for 127.0.0.1/localhost
    for tls in ({}, {"thumbprint": "ab" * 32}):
        vc = _vsphere(lab, **tls)
        with pytest.raises(ssl.SSLError) as caught:
            await vc.refresh()
        assert isinstance(caught.value, PinMismatch) == bool(tls)
        await vc.close()
    pretty = ":".join(lab.thumbprint[i : i + 2] for i in range(0, 64, 2)).upper()
    for tls in ({"ca_file": str(lab.ca_file)}, {"thumbprint": lab.thumbprint}, {"thumbprint": pretty}):
        vc = _vsphere(lab, **tls)
        hosts = await vc.refresh()
        assert len(hosts) == 8
        await vc.close()


async def test_insecure_warns(vcsim: Vcsim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="esxbot.vsphere")
    vc = _vsphere(vcsim, insecure=True)
    assert len(await vc.refresh()) == 8
    await vc.close()
    assert "verification is DISABLED" in caplog.text


async def test_inventory_dump(vcsim: Vcsim) -> None:
    settings = VCenterSettings(
        name="vc1", host=vcsim.host, port=vcsim.port, user=vcsim.user, password=Secret(vcsim.password),
        ca_file=str(vcsim.ca_file),
    )  # fmt: skip
    code, text = await dump_inventory([settings], as_json=True)
    assert code == 0
    records = {h["name"]: h for h in json.loads(text)["hosts"]}
    usb = records["esx-usb-01.lab.local"]
    assert usb["boot_device"]["kind"] == "usb" and usb["release_name"] == "ESXi 7.0 Update 2a"
    code, text = await dump_inventory([settings], as_json=False)
    assert code == 0 and "usb (mpx.vmhba32:C0:T0:L0, vmhba32, vmkusb)" in text and "8 hosts from 1/1" in text
    wrong = VCenterSettings(name="vc2", host=vcsim.host, port=1, user="u", password=Secret("p"))
    code, text = await dump_inventory([settings, wrong], as_json=False)
    assert code == 1 and "vCenter vc2: ConnectionRefusedError" in text


async def test_refreshes_reuse_one_view_and_remake_a_lost_one(vcsim: Vcsim) -> None:
    vc = _vsphere(vcsim, ca_file=str(vcsim.ca_file))
    session = vc._session
    try:
        await vc.refresh()
        view = session.kept("inventory-view", lambda: MoRef("ContainerView", "none"))
        assert len(await vc.refresh()) == 8
        assert session.kept("inventory-view", lambda: MoRef("ContainerView", "none")) == view
        await vc._call(session.post, method_request("DestroyView", view))  # gone behind our back
        assert len(await vc.refresh()) == 8
        remade = session.kept("inventory-view", lambda: MoRef("ContainerView", "none"))
        assert remade.type == "ContainerView" and remade != view
    finally:
        await vc.close()
    assert session._kept == {}
