"""Log rules, the log-line parser and ``logs scan``: on our own fixtures and on the real shared lines."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.alerts.log_scan import as_json, format_text, render, scan_files
from bot.alerts.logline import parse_line
from bot.alerts.patterns import LogRuleError, SignalKind, is_boot_device, load_rules
from bot.model import BootDevice, BootKind, Host
from tests.shared_data import shared_file

LOGS = Path(__file__).parent / "data" / "logs"
USB = "mpx.vmhba32:C0:T0:L0"
SAN_LUN = "naa.60002ac0000000000000004a00019d4e"


def _host(name: str, kind: BootKind, device: str | None, adapter: str | None = None) -> Host:
    return Host(name=name, build=17867351, boot_device=BootDevice(kind=kind, device=device, adapter=adapter))


INVENTORY = [
    _host("esx-usb-01.lab.example", BootKind.USB, USB, "vmhba32"),
    _host("esx-san-01.lab.example", BootKind.SAN, "naa.60002ac0000000000000004a00000001"),
    _host("esx-sd-02.lab.example", BootKind.SD, "mpx.vmhba33:C0:T0:L0"),
    _host("esx-disk-03.lab.example", BootKind.DISK, "naa.5000c500deadbeef"),
]


def _triples(signals: object) -> list[tuple[str | None, str, str | None]]:
    return [(s.host, s.kind.value, s.device) for s in signals]  # type: ignore[attr-defined]


# --- parser -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "host", "app", "message_start"),
    [
        (
            "<166>1 2024-03-02T10:15:00.118Z esx1 vmkwarning - - - cpu4:1)WARNING: x",
            "esx1",
            "vmkwarning",
            "cpu4",
        ),
        (
            "<14>1 2024-03-02T10:15:00Z esx1 hostd 2099 - [Originator@6876 sub=A] hello",
            "esx1",
            "hostd",
            "hello",
        ),
        (
            "<166>2015-02-14T20:37:58.770Z esx.example vmkwarning: cpu26:4316)WARNING: y",
            "esx.example",
            "vmkwarning",
            "cpu26",
        ),
        ("2015-06-27T11:32:03Z PRD-ESX-03.adm clomd[33804]: Setting x", "PRD-ESX-03.adm", "clomd", "Setting"),
        ("2024-05-09T02:11:47.513Z cpu12:2097680)WARNING: NMP: z", None, "vmkernel", "cpu12"),
        (
            "2024-05-09T02:12:31.100Z: [APDCorrelator] 661us: [esx.problem.storage.apd.start] D",
            None,
            "vobd",
            "[APD",
        ),
        (
            "2023-12-07T05:07:09.945Z Wa(180) vmkwarning: cpu3:2097803)WARNING: NFS: 5544",
            None,
            "vmkwarning",
            "cpu3",
        ),
        ("2023-12-07T05:07:09.945Z In(182)+ vmkernel: continued", None, "vmkernel", "continued"),
        (
            "2024-01-01T00:00:00.000Z info hostd[2099480] [Originator@6876 sub=Vimsvc] m",
            None,
            "hostd",
            "[Orig",
        ),
        ("Mar  2 10:23:00 esx-usb-01 vobd: [x] y", "esx-usb-01", "vobd", "[x]"),
    ],
)
def test_parse_shapes(line: str, host: str | None, app: str, message_start: str) -> None:
    parsed = parse_line(line.encode(), year=2024)
    assert parsed is not None
    assert (parsed.hostname, parsed.app) == (host, app)
    assert parsed.message.startswith(message_start)
    assert parsed.time is not None and parsed.time.tzinfo is not None


def test_parse_time_is_utc_and_naive_means_utc() -> None:
    parsed = parse_line(
        "2021-02-02T19:26:34 cpu23:3614392)ALERT: Bootbank cannot be found at path '/bootbank'"
    )
    assert parsed is not None and parsed.time == datetime(2021, 2, 2, 19, 26, 34, tzinfo=UTC)
    shifted = parse_line("<14>1 2024-03-02T12:00:00+02:00 esx1 hostd - - - m")
    assert shifted is not None and shifted.time == datetime(2024, 3, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"<1999>1 2024-03-02T10:15:00Z esx vmkwarning - - - m",
        b"<166>1 2024-03-02T10:15:00.118Z esx-usb-01",
        b"2024-03-02T10:15:00.118Z",
        b"<166>1 2024-03-02T10:15:00Z esx\x00 vmkernel - - - nul",
        b"GET / HTTP/1.1",
        b"<166>1 2024-03-02T10:15:00Z esx app - - [unterminated sd",
    ],
)
def test_parse_rejects_garbage(raw: bytes) -> None:
    assert parse_line(raw) is None


def test_parse_neutralises_control_characters() -> None:
    parsed = parse_line(b"<14>1 2024-03-02T10:15:00Z esx1 hostd - - - red \x1b[31malert\x07")
    assert parsed is not None and parsed.message == "red ?[31malert?"


# --- rules and the boot-device decision -----------------------------------------------------------
def test_builtin_rules_load_and_cover_the_kinds() -> None:
    rules = load_rules()
    assert {r.kind for r in rules.rules} == set(SignalKind)
    assert len({r.id for r in rules.rules}) == len(rules.rules)
    assert all(r.needles for r in rules.rules), "every built-in rule must have a prefilter needle"


def test_user_rule_file_adds_and_replaces(tmp_path: Path) -> None:
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        "rules:\n"
        "  - id: bootbank-not-found\n    kind: loss\n    severity: warning\n    scope: any\n"
        "    needles: [bootbank gone]\n    regex: 'bootbank gone'\n"
        "  - id: vmkusb-reset\n    kind: precursor\n    scope: boot\n    needles: [vmkusb]\n"
        "    regex: 'vmkusb: .*reset on (?P<dev>vmhba\\d+:C\\d+:T\\d+:L\\d+)'\n    device_group: dev\n"
    )
    rules = load_rules([extra])
    by_id = {r.id: r for r in rules.rules}
    assert by_id["bootbank-not-found"].severity == "warning"
    assert [h.rule.id for h in rules.match("x bootbank gone")] == ["bootbank-not-found"]
    hits = rules.match("vmkusb: port reset on vmhba32:C0:T0:L0")
    assert [(h.rule.id, h.device) for h in hits] == [("vmkusb-reset", "vmhba32:C0:T0:L0")]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("rules: [{id: a, kind: nope, regex: x}]", "nope"),
        ("rules: [{id: a, kind: loss, regex: '('}]", "rule #1"),
        ("rules: [{id: a, kind: loss, regex: x, scope: boot}]", "device_group"),
        ("rules: [{id: a, kind: loss, regex: x, device_group: dev}]", "no group named"),
        ("rules: [{id: a, kind: loss, regex: x, colour: red}]", "unknown field"),
        ("rules: [{kind: loss, regex: x}]", "missing field 'id'"),
        ("rules: {a: 1}", "expected a list"),
        ("rules: [: :", "not valid YAML"),
    ],
)
def test_bad_rule_files_say_what_is_wrong(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(LogRuleError, match=re.escape(fragment)):
        load_rules([path])


@pytest.mark.parametrize(
    ("device", "host", "expected"),
    [
        (USB, None, True),
        ("mpx.vmhba32:C0:T0:L0:7", None, True),
        ("vmhba32:C0:T0:L0", None, True),
        ("mpx.vmhba33:C0:T0:L0", None, True),
        (SAN_LUN, None, False),
        ("mpx.vmhba1:C0:T0:L0", None, False),
        ("LOCKER-5fecb7ff-8662d6b5-7732-24b6fde3ff81", None, True),
        (None, None, False),
        (USB, INVENTORY[0], True),
        ("vmhba32:C0:T0:L0", INVENTORY[0], True),
        (SAN_LUN, INVENTORY[1], False),
        ("naa.60002ac0000000000000004a00000001:3", INVENTORY[1], True),
        ("vmhba33:C0:T0:L0", INVENTORY[2], True),
        (USB, INVENTORY[3], False),
        ("vmhba32:C0:T0:L0", INVENTORY[3], False),
        (USB, _host("unknown-boot", BootKind.UNKNOWN, None), True),
        (USB, _host("usb-kind-only", BootKind.USB, None), True),
        (USB, _host("disk-kind-only", BootKind.DISK, None), False),
        ("LOCKER-5fecb7ff-8662d6b5-7732-24b6fde3ff81", _host("pxe", BootKind.PXE, None), True),
    ],
)
def test_is_boot_device(device: str | None, host: Host | None, expected: bool) -> None:
    assert is_boot_device(device, host) is expected


# --- scan on our fixtures -------------------------------------------------------------------------
FLEET_WITHOUT_INVENTORY = [
    ("esx-usb-01.lab.example", "precursor", USB),
    ("esx-usb-01.lab.example", "precursor", USB),
    (None, "precursor", "mpx.vmhba33:C0:T0:L0"),
    ("esx-sd-02.lab.example", "precursor", "vmhba33:C0:T0:L0"),
    ("esx-usb-01.lab.example", "loss", None),
    ("esx-usb-01.lab.example", "loss", USB),
    ("esx-usb-01.lab.example", "recovery", USB),
    ("esx-disk-03.lab.example", "precursor", USB),  # no inventory: a local USB path counts
]


def test_scan_fixture_without_inventory_uses_local_usb_sd_paths() -> None:
    result = scan_files([LOGS / "fleet-collector.log"])
    assert _triples(result.signals) == FLEET_WITHOUT_INVENTORY
    assert result.errors == ()
    assert result.unparsed == 0


def test_scan_fixture_with_inventory_lets_the_host_boot_device_decide() -> None:
    result = scan_files([LOGS / "fleet-collector.log"], INVENTORY)
    # esx-disk-03 boots from a local disk: its USB stick in doubt is not a bootbank matter
    assert _triples(result.signals) == FLEET_WITHOUT_INVENTORY[:-1]


def test_san_boot_lun_in_doubt_is_a_precursor_for_that_host_only() -> None:
    san_boot = [_host("esx-san-01.lab.example", BootKind.SAN, SAN_LUN)]
    result = scan_files([LOGS / "fleet-collector.log"], san_boot)
    san = [t for t in _triples(result.signals) if t[0] == "esx-san-01.lab.example"]
    assert san == [
        ("esx-san-01.lab.example", "precursor", SAN_LUN),
        ("esx-san-01.lab.example", "precursor", SAN_LUN),
        ("esx-san-01.lab.example", "loss", SAN_LUN),
        ("esx-san-01.lab.example", "precursor", SAN_LUN),  # APD start
    ]


def test_scan_local_file_gz_and_default_host(tmp_path: Path) -> None:
    packed = tmp_path / "vmkwarning.0.gz"
    packed.write_bytes(gzip.compress((LOGS / "local-vmkwarning.log").read_bytes()))
    result = scan_files([packed], INVENTORY, default_host="esx-usb-01.lab.example")
    assert [(s.kind.value, s.device, s.rule) for s in result.signals] == [
        ("precursor", USB, "nmp-state-in-doubt"),
        ("loss", None, "bootbank-not-found"),
        ("precursor", USB, "apd-start"),
        ("loss", USB, "apd-timeout"),
        ("recovery", USB, "apd-exit"),
        ("loss", USB, "device-permanently-inaccessible"),
        ("corruption", "mpx.vmhba32:C0:T0:L0:7", "vmfs-volume-corrupted"),
        ("corruption", "OSDATA-6631c2e0-9f3a4b11-77aa-3cfdfe0a1b22", "system-volume-damaged"),
        ("recovery", None, "host-booted"),
    ]
    assert {s.host for s in result.signals} == {"esx-usb-01.lab.example"}
    assert result.signals[1].time == datetime(2024, 5, 9, 2, 12, 30, tzinfo=UTC)


def test_scan_8x_standardized_lines_for_an_sd_host() -> None:
    result = scan_files([LOGS / "esx8-standard.log"], INVENTORY, default_host="esx-sd-02.lab.example")
    assert [(s.host, s.kind.value, s.device, s.app) for s in result.signals] == [
        ("esx-sd-02.lab.example", "precursor", "mpx.vmhba33:C0:T0:L0", "vmkernel"),
        ("esx-sd-02.lab.example", "loss", "mpx.vmhba33:C0:T0:L0", "vobd"),
    ]
    assert result.unparsed == 0


def test_every_builtin_rule_fires_on_our_own_fixtures() -> None:
    result = scan_files(sorted(LOGS.glob("*.log")))
    assert {s.rule for s in result.signals} == {r.id for r in load_rules().rules}


def test_scan_json_and_text_shapes() -> None:
    result = scan_files([LOGS / "fleet-collector.log", LOGS / "garbage.log", LOGS / "missing.log"])
    rows = as_json(result)
    assert rows[0]["time"] == "2024-03-02T10:15:00.118Z"
    assert {"host", "kind", "device", "time", "line"} <= set(rows[0])
    assert rows[0]["line"].startswith("<166>1 2024-03-02T10:15:00.118Z esx-usb-01")
    text = format_text(result)
    assert "2024-03-02T10:15:00.118Z  esx-usb-01.lab.example  PRECURSOR  mpx.vmhba32:C0:T0:L0  <166>1" in text
    assert "8 signal(s) (2 loss, 5 precursor, 1 recovery)" in text
    assert result.unparsed == 5
    assert len(result.errors) == 1 and "missing.log: cannot read" in result.errors[0]
    assert result.errors[0] not in text
    assert json.loads(render(result, json_output=True)) == rows
    assert render(result, json_output=False) == text


# --- scan on the real shared lines ----------------------------------------------------------------
_BOOT_WORDS = re.compile(r"vmhba32|bootbank|boot filesystem", re.IGNORECASE)
_TAG = re.compile(r"^# \[(?P<tag>[A-Z]+)\]")
_EXPECTED_KIND = {
    "LOSS": "loss",
    "EVENT": "loss",
    "CONFIGISSUE": "loss",
    "PRECURSOR": "precursor",
    "CORRUPTION": "corruption",
}


def _tagged_lines(path: Path) -> list[tuple[str | None, str]]:
    """(tag of the block the line is in, line) from the data file's own ``# [TAG]`` markers.

    A tag opens a block; a section header (``##``) closes it, so the untagged §6 text and the backup
    scripts quoted in §7 stay untagged; other comments (sources, remarks) leave the block open.
    """
    out: list[tuple[str | None, str]] = []
    tag: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            found = _TAG.match(line)
            if found:
                tag = found.group("tag")
            elif line.startswith("##"):
                tag = None
            continue
        if line.strip():
            out.append((tag, line))
    return out


def test_real_bootbank_lines_every_boot_device_block_found_nothing_else() -> None:
    path = shared_file("logs/bootbank-logs.txt")
    lines = _tagged_lines(path)
    result = scan_files([path])
    found: dict[str, set[str]] = {}
    for signal in result.signals:
        found.setdefault(signal.line, set()).add(signal.kind.value)
    checked = 0
    for tag, line in lines:
        about_boot = (
            tag in _EXPECTED_KIND and bool(_BOOT_WORDS.search(line) or "LOCKER-" in line)
            # the excerpt "nmp_DeviceRequestFast[...]" was cut before the device name: nothing in it
            # says which device was in doubt, so it cannot be tied to the boot device.
        )
        if about_boot:
            assert found.get(line) == {_EXPECTED_KIND[tag]}, f"[{tag}] not found: {line}"  # type: ignore[index]
            checked += 1
        else:
            assert line not in found, f"signal on a line not about the boot device: [{tag}] {line}"
    assert checked >= 15
    tags_found = {tag for tag, line in lines if line in found}
    assert {"LOSS", "PRECURSOR"} <= tags_found


def test_real_syslog_samples_only_boot_device_lines_signal() -> None:
    path = shared_file("logs/esxi-syslog-samples.txt")
    result = scan_files([path])
    signalled = {s.line for s in result.signals}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        about_boot = bool(_BOOT_WORDS.search(line) or "LOCKER-" in line)
        assert (line in signalled) is about_boot, line


def test_real_lines_with_a_san_booted_inventory_keep_only_text_level_loss() -> None:
    path = shared_file("logs/bootbank-logs.txt")
    host = _host("esx-san", BootKind.SAN, "naa.600508b1001c0000000000000000abcd")
    result = scan_files([path], [host], default_host="esx-san")
    kinds = {s.kind for s in result.signals}
    assert SignalKind.PRECURSOR not in kinds
    assert {s.rule for s in result.signals if s.kind is SignalKind.LOSS} <= {
        "bootbank-not-found",
        "boot-filesystem-connectivity-lost",
    }
    assert all(s.host == "esx-san" for s in result.signals if s.time is not None)


def test_every_rule_loader_names_an_unreadable_user_file(tmp_path: Path) -> None:
    from bot.alerts.inhibition import InhibitRuleError, load_inhibit_rules
    from bot.releases.match_rules import MatchRuleError, MatchRuleSet

    bad = tmp_path / "rules.yaml"
    bad.write_bytes(b"\xff\xfe not text")
    missing = tmp_path / "missing.yaml"
    with pytest.raises(LogRuleError, match=r"rules\.yaml: cannot read"):
        load_rules([bad])
    with pytest.raises(InhibitRuleError, match=r"missing\.yaml: cannot read"):
        load_inhibit_rules([missing])
    # a non-UTF-8 match-rule file used to escape as a UnicodeDecodeError
    with pytest.raises(MatchRuleError, match=r"rules\.yaml: cannot read"):
        MatchRuleSet.load([bad])
