"""Feature facts from the vCenter simulator: collected in the one-call inventory and through
WaitForUpdatesEx, turned into host facts, and deciding a vSAN fix in ``pr`` with the source named."""

from __future__ import annotations

import asyncio
from datetime import date
from types import SimpleNamespace
from typing import Any

from bot.builds import BuildCatalog
from bot.inventory.merged import MergedInventory
from bot.messages import Command, Conversation, Reply, Table, User
from bot.model import Fix, Host, Release
from bot.releases.match_rules import MatchRuleSet
from bot.releases.service import ReleaseService
from bot.vsphere import collect
from bot.vsphere.client import VSphere
from bot.vsphere.host_retrieval import PROPERTY_SETS, release_lookup
from bot.vsphere.hostprops import DECODERS
from bot.vsphere.session import Endpoint, Session
from bot.vsphere.soap import filter_spec, retrieve_request
from bot.vsphere.soap_scan import scan_retrieve
from handlers.releases import pr as pr_cmd
from tests.fixtures.vcsim import Vcsim, VcsimFactory
from tests.test_vsphere_inventory import _decoded_by_elementtree

_PERC = {"device": "vmhba0", "driver": "lsi_mr3", "model": "PERC H730P Mini"}
MODEL: dict[str, Any] = {
    "datacenter": "dc1",
    "clusters": 2,
    "hosts_per_cluster": 2,
    "vms_per_cluster": 0,
    "cluster_names": ["vsan-ha", "plain"],
    "cluster_settings": [{"ha": True, "drs": False}, {"ha": False, "drs": False}],
    "defaults": {
        "version": "7.0.2",
        "build": "17867351",
        "vendor": "Dell Inc.",
        "model": "PowerEdge R640",
        "hbas": [_PERC],
        "volumes": [{"name": "OSDATA-1", "type": "VMFSOS", "device": "mpx.vmhba0:C0:T0:L0", "partition": 7}],
        "vsan": False,
        "vmotion": False,
    },
    "hosts": [
        {"name": "esx-vsan-01", "vsan": True, "vmotion": True},
        {
            "name": "esx-iscsi-02",
            "vsan": True,
            "hbas": [
                _PERC,
                {
                    "device": "vmhba64",
                    "driver": "iscsi_vmk",
                    "model": "iSCSI Software Adapter",
                    "type": "iscsi",
                },
            ],
        },
        {
            "name": "esx-nvmetcp-03",
            "hbas": [
                _PERC,
                {"device": "vmhba65", "driver": "nvmetcp", "model": "VMware NVMe over TCP Storage Adapter"},
            ],
        },
        {
            "name": "esx-vvol-04",
            "datastores": [{"name": "vvol-ds", "type": "VVOL"}],
            "sriov": True,
            "nsx": True,
        },
    ],
}
FLAGS = ("vsan", "ha", "drs", "iscsi", "nvmeof", "vvols", "vmotion", "pmem", "nsx", "sriov", "fcoe")
EXPECTED = {  # every other fact of FLAGS is false
    "esx-vsan-01": {"vsan", "ha", "vmotion"},
    "esx-iscsi-02": {"vsan", "ha", "iscsi"},
    "esx-nvmetcp-03": {"nvmeof"},
    "esx-vvol-04": {"vvols", "sriov", "nsx"},
}


def _vsphere(lab: Vcsim) -> VSphere:
    endpoint = Endpoint(
        "vc1", lab.host, lab.user, lab.password, port=lab.port, timeout=5, ca_file=str(lab.ca_file)
    )
    return VSphere(
        endpoint, release=release_lookup(BuildCatalog.bundled()), wait_seconds=1, backoff=(0.1, 0.5)
    )


def _present(host: Host) -> set[str]:
    assert set(FLAGS) <= set(host.features), f"{host.name}: unknown {set(FLAGS) - set(host.features)}"
    return {name for name in FLAGS if host.features[name].present}


async def test_facts_from_retrieval_and_from_wait_for_updates(vcsim_factory: VcsimFactory) -> None:
    lab = vcsim_factory(model=MODEL)
    vc = _vsphere(lab)
    refreshed = {h.name: h for h in await vc.refresh()}
    assert {name: _present(refreshed[name]) for name in EXPECTED} == EXPECTED
    assert "rdm" not in refreshed["esx-vsan-01"].features  # not collected: unknown
    sources = {name: fact.source for name, fact in refreshed["esx-vsan-01"].features.items()}
    assert sources["ha"] == "vCenter: cluster vsan-ha has HA enabled"
    assert sources["vsan"] == "vCenter: vSAN is enabled on the host"
    assert (
        refreshed["esx-nvmetcp-03"].features["nvmeof"].source == "vCenter: NVMe over Fabrics adapter vmhba65"
    )
    assert refreshed["esx-vvol-04"].features["vvols"].source == "vCenter: a vVols datastore among 2"

    watched = _vsphere(lab)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(watched.run())
        async with asyncio.timeout(10):
            while len(watched.hosts()) < len(refreshed):
                await asyncio.sleep(0.05)
        task.cancel()
    for host in watched.hosts():
        assert host.features == refreshed[host.name].features, host.name
    await vc.close()
    await watched.close()


async def test_pr_on_a_vsan_fix_names_where_the_fact_came_from(vcsim_factory: VcsimFactory) -> None:
    lab = vcsim_factory(model=MODEL)
    vc = _vsphere(lab)
    await vc.refresh()
    fix = Fix("2771730", "vSAN hosts report a false disk failure", "vSAN hosts report a false disk failure.")
    release = Release("7.0", "ESXi 7.0 Update 2c", 18426014, date(2021, 8, 24), version="7.0.2", fixes=(fix,))
    service = ReleaseService(
        BuildCatalog.bundled(), MatchRuleSet.bundled(), MergedInventory([vc], None), bundled=[release]
    )
    ctx: Any = SimpleNamespace(
        services=SimpleNamespace(releases=service),
        command=Command(User("console:ann"), Conversation("console", "console"), "pr 2771730"),
    )
    reply: Reply = await pr_cmd.handler(ctx, "2771730")
    assert reply.data["verdicts"] == {
        "esx-vsan-01": "affected",
        "esx-iscsi-02": "affected",
        "esx-nvmetcp-03": "not-affected",
        "esx-vvol-04": "not-affected",
    }
    rows = {row[0]: row for b in reply.blocks if isinstance(b, Table) for row in b.rows}
    assert rows["esx-vsan-01"][3].startswith(
        "fix concerns vSAN; host uses it (vCenter: vSAN is enabled on the host)"
    )
    assert (
        rows["esx-vvol-04"][3]
        == "fix concerns vSAN; host does not use it (vCenter: vSAN is not enabled on the host)"
    )
    await vc.close()


def test_scanner_and_elementtree_agree_on_the_feature_paths(vcsim_factory: VcsimFactory) -> None:
    lab = vcsim_factory(model=MODEL)
    session = Session(
        Endpoint("vc1", lab.host, lab.user, lab.password, port=lab.port, ca_file=str(lab.ca_file))
    )
    try:
        view = collect._create_view(session)
        payload = session.post(
            retrieve_request(session.property_collector, filter_spec(view, PROPERTY_SETS), 1000)
        )
    finally:
        session.close()
    scanned = list(scan_retrieve(payload, DECODERS).objects)
    assert scanned == _decoded_by_elementtree(payload)
    by_name = {o.props.get("name"): o.props for o in scanned}
    assert by_name["esx-vvol-04"]["config.network.opaqueSwitch"] == 1
    assert by_name["esx-vvol-04"]["config.pciPassthruInfo"] is True
    assert by_name["esx-vsan-01"]["summary.config.vmotionEnabled"] is True
    assert by_name["vsan-ha"]["configuration.dasConfig.enabled"] is True
