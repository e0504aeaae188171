"""``match_release`` (bitsets over the fleet) gives the verdict and reasons of ``match`` on every pair."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bot.builds import BuildCatalog
from bot.model import FEATURES, BootDevice, BootKind, FeatureFact, Fix, Host, Release, Verdict
from bot.releases.match_rules import MatchRuleSet
from bot.releases.matching import VERDICT_ORDER, match, match_release
from bot.releases.release_conditions import host_line

TEXTS = [
    "Hosts that boot from USB might lose the bootbank",
    "Hosts booting from SD cards on the vmkusb driver report errors",
    "Servers from Dell with the i40en driver fail with a purple diagnostic screen",
    "On HPE ProLiant servers the ixgben driver reports a wrong link state",
    "vSAN clusters might show degraded objects",
    "vMotion of virtual machines with NVMe controllers fails",
    "iSCSI sessions drop after a path failover",
    "In clusters on Dell EMC PowerFlex with RDM disks, hosts stop responding",
    "After an upgrade from ESXi 7.0 Update 2a, the hostd service fails",
    "Hosts on ESXi 6.7 Update 3 and Lenovo ThinkSystem servers log warnings",
    "The hostd service leaks memory",
    "Cisco UCS hosts with SATADOM boot devices and vGPU profiles fail",
    "Supermicro hosts with the nvme_pcie driver lose paths",
    "Hosts that use NVMe over TCP in a vSphere HA cluster lose paths",
    "Affected ESXi versions are 7.0 Update 3a, 7.0 Update 2d and 7.0 Update 2c. DRS fails",
    "Hosts that run ESXi 7.0 Update 1c or later with vVols datastores fail",
]
USER_RULES = (
    "rules:\n"
    "  - {id: feature-gpu, label: vGPU, tags: [vgpu], absent: 'false', patterns: ['\\bvGPU\\b']}\n"
    "  - {id: boot-satadom, kind: boot, label: SATADOM boot, boot: [satadom], absent: unknown,"
    " vendors: [cisco], patterns: ['\\bSATADOM\\b']}\n"
)


def _fleet(catalog: BuildCatalog, count: int) -> list[Host]:
    rng = random.Random(5)
    line = [k.build for k in (*catalog.product_line("7.0"), *catalog.product_line("8.0")[:2])]
    builds = [*rng.sample(line, 14), 18426014, 17867351, 12345, None]
    makes = [("Dell Inc.", "PowerEdge R640"), ("HPE", "ProLiant DL380"), ("Cisco Systems", "UCSC-C220")]
    makes += [("Lenovo", None), (None, "Synergy 480"), (None, None), ("", "")]
    hosts = []
    for i in range(count):
        kind = rng.choice(list(BootKind))
        driver = rng.choice(["vmkusb", "VMKUSB", "lsi_mr3", "nvme_pcie", None])
        vendor, model = rng.choice(makes)
        drivers = rng.sample(["i40en", "IXGBEN", "nvme_pcie", "iscsi_vmk", "lsi_mr3"], rng.randint(0, 3))
        tags = rng.sample(
            ["HA", "vsan", "vsan-off", "powerflex", "rdm", "vgpu", "nvme", "prod"], rng.randint(0, 3)
        )
        build = rng.choice(builds)
        known = rng.sample(FEATURES, rng.randint(0, len(FEATURES))) if rng.random() < 0.6 else []
        features = {name: FeatureFact(rng.random() < 0.4, "test") for name in known}
        hosts.append(
            Host(
                f"h{i:03d}",
                build=build,
                version=rng.choice([None, "7.0.2", "6.7.0"]) if build in (12345, None) else None,
                release_name=catalog.lookup(build).name
                if catalog.lookup(build) and rng.random() < 0.5
                else None,  # type: ignore[union-attr]
                vendor=vendor,
                model=model,
                boot_device=BootDevice(kind, "mpx.vmhba32:C0:T0:L0", "vmhba32", driver),
                drivers=dict.fromkeys(drivers, "1.0"),
                tags=frozenset(tags),
                features=features,
            )
        )
    return hosts


@pytest.mark.parametrize("user_rules", [False, True])
def test_every_pair_agrees_with_match(tmp_path: Path, user_rules: bool) -> None:
    catalog = BuildCatalog.bundled()
    rules = MatchRuleSet.bundled()
    if user_rules:
        extra = tmp_path / "rules.yaml"
        extra.write_text(USER_RULES, encoding="utf-8")
        rules = MatchRuleSet.load([extra])
    fixes = tuple(Fix(str(2_000_000 + i), text, f"{text}. Resolved.") for i, text in enumerate(TEXTS))
    release = Release("7.0", "ESXi 7.0 Update 2c", 18426014, version="7.0.2", fixes=fixes)
    # the same PRs in an 8.0 release: its reasons on 7.0 hosts name the 7.0 release
    others = [Release("8.0", "ESXi 8.0a", 20842819, version="8.0.0", fixes=fixes)]
    hosts = _fleet(catalog, 300)
    result = match_release(release, hosts, rules, catalog, others=others)
    seen: dict[Verdict, int] = dict.fromkeys(VERDICT_ORDER, 0)
    for fix_matches in result.fixes:
        verdict_of = {h: v for v in VERDICT_ORDER for h in fix_matches.hosts(v)}
        assert len(verdict_of) == len(hosts)
        reasons_of = {h: o.reasons for o, members in fix_matches.groups for h in members}
        for host in hosts:
            expected = match(fix_matches.fix, host, release, rules, catalog, others=others)
            assert (fix_matches.fix.pr, host.name, verdict_of[host.name]) == (
                expected.pr,
                expected.host,
                expected.verdict,
            )
            assert reasons_of[host.name] == expected.reasons
            seen[expected.verdict] += 1
    assert all(seen.values()), seen  # the fleet exercises every verdict


def test_fleet_against_a_newer_line_release() -> None:
    """An 8.0 release on the mixed fleet: 6.7/7.0 hosts are not-affected by line, named where the same
    PR is known from their own line; every pair still agrees with ``match``."""
    catalog = BuildCatalog.bundled()
    rules = MatchRuleSet.bundled()
    fixes = tuple(Fix(str(2_000_000 + i), text, f"{text}. Resolved.") for i, text in enumerate(TEXTS))
    release = Release("8.0", "ESXi 8.0 Update 1", 21495797, version="8.0.1", fixes=fixes)
    others = [Release("7.0", "ESXi 7.0 Update 3c", 19193900, version="7.0.3", fixes=fixes[:1])]
    hosts = _fleet(catalog, 200)
    result = match_release(release, hosts, rules, catalog, others=others)
    for fix_matches in result.fixes:
        reasons_of = {h: o for o, members in fix_matches.groups for h in members}
        for host in hosts:
            expected = match(fix_matches.fix, host, release, rules, catalog, others=others)
            assert (reasons_of[host.name].verdict, reasons_of[host.name].reasons) == (
                expected.verdict,
                expected.reasons,
            )
    usb = result.fixes[0]
    on_70 = next(h for h in hosts if host_line(h, catalog) == "7.0")
    outcome = usb.outcome(hosts.index(on_70))
    assert outcome.verdict is Verdict.NOT_AFFECTED
    assert outcome.reasons == (
        "fix is in the 8.0 line; host runs 7.0 — a 7.0 release carries its own fixes; "
        "PR 2000000 is also in ESXi 7.0 Update 3c, of the host's line",
    )


def test_empty_fleet_and_no_fixes() -> None:
    catalog = BuildCatalog.bundled()
    release = Release("7.0", "ESXi 7.0 Update 2c", 18426014, fixes=(Fix("1", "USB boot devices fail"),))
    result = match_release(release, [], MatchRuleSet.bundled(), catalog)
    assert result.fixes[0].hosts(*VERDICT_ORDER) == [] and list(result.matches()) == []
    assert match_release(Release("7.0", "x", 1), [Host("a")], MatchRuleSet.bundled(), catalog).fixes == ()
