"""Settings precedence and secret redaction; static inventory validation with precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from bot.inventory.static_file import InventoryError, load_inventory, parse_inventory
from bot.model import BootKind, ConnectionState


def test_precedence_env_over_dotenv_over_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "esxbot.yaml"
    cfg.write_text("confirm_ttl: 60\nslack:\n  slash_command: /vmw\nauth:\n  roles:\n    'slack:U1': admin\n")
    dotenv = tmp_path / ".env"
    dotenv.write_text("ESXBOT_CONFIRM_TTL=120\nESXBOT_SLACK_BOT_TOKEN='xoxb-secret-1'\n")
    s = load_settings(cfg, env={"ESXBOT_CONFIRM_TTL": "180"}, dotenv=dotenv)
    assert s.confirm_ttl == 180
    assert s.slack.slash_command == "/vmw" and s.slack.bot_token.reveal() == "xoxb-secret-1"
    assert s.auth.roles == {"slack:U1": "admin"}
    assert "xoxb-secret-1" not in repr(s) and "Secret('***')" in repr(s)
    assert s.slack.enabled and not s.demo_mode


def test_demo_mode_without_anything(tmp_path: Path) -> None:
    s = load_settings(None, env={}, dotenv=None)
    assert s.demo_mode


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("confirm_ttl: [1]\n", "confirm_ttl: expected a duration"),
        ("slack: yes\n", "slack: expected a mapping"),
        ("slack:\n  tokn: x\n", "slack.tokn: unknown setting (did you mean bot_token?)"),
        ("vcenters:\n  - {name: vc1}\n", "vcenters[0]"),
        ("- a\n", "top level must be a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_config_errors_name_file_and_setting(tmp_path: Path, yaml_text: str, needle: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError, match=r"bad\.yaml") as err:
        load_settings(cfg, env={}, dotenv=None)
    assert needle in str(err.value)


def test_inventory_minimal_and_rich(tmp_path: Path) -> None:
    hosts = parse_inventory(
        {
            "hosts": [
                {"name": "a", "build": "build-17867351"},
                {
                    "name": "b",
                    "version": "7.0.3",
                    "boot_device": {"kind": "SD", "device": "mpx.vmhba32:C0:T0:L0", "driver": "vmkusb"},
                    "drivers": ["i40en", "lsi_mr3"],
                    "tags": ["PowerFlex"],
                    "connection_state": "notresponding",
                    "labels": {"rack": "R12"},
                    "features": ["vSAN", "ha"],
                },
            ]
        },
        "inv.yaml",
        lambda build: ("7.0.2", "ESXi 7.0 Update 2a") if build == 17867351 else None,
    )
    a, b = hosts
    assert a.build == 17867351 and a.release_name == "ESXi 7.0 Update 2a" and a.version == "7.0.2"
    assert a.boot_device.kind is BootKind.UNKNOWN and a.bootbank_mounted is None
    assert b.boot_device.kind is BootKind.SD and b.drivers == {"i40en": "", "lsi_mr3": ""}
    assert b.tags == frozenset({"powerflex"}) and b.connection_state is ConnectionState.NOT_RESPONDING
    assert b.extra == {"rack": "R12"}
    assert {name for name, fact in b.features.items() if fact.present} == {"vsan", "ha"}
    assert b.features["nsx"].present is False  # a features list is complete


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ([{"build": 1}], "hosts[0]: missing name"),
        ([{"name": "x"}], "hosts[0] (x): needs a build or a version"),
        ([{"name": "x", "build": "abc"}], "hosts[0] (x).build: not a build number"),
        ([{"name": "x", "build": 1, "boot_device": "floppy"}], "hosts[0] (x).boot_device.kind: 'floppy'"),
        ([{"name": "x", "build": 1, "tags": "a"}], "hosts[0] (x).tags"),
        ([{"name": "x", "build": 1}, {"name": "X", "build": 2}], "hosts[1] (X): duplicate of hosts[0]"),
        ({"servers": []}, "expected a list of hosts"),
        (
            [{"name": "x", "build": 1, "rack": "R1"}],
            "hosts[0] (x).rack: unknown field; free-form data goes under labels:",
        ),
        (
            [{"name": "x", "build": 1, "clustr": "c"}],
            "hosts[0] (x).clustr: unknown field (did you mean cluster?)",
        ),
        ([{"name": "x", "build": -5}], "hosts[0] (x).build: -5 is not a build number (1 to 999999999)"),
        (
            [{"name": "x", "build": 10**30}],
            "hosts[0] (x).build: 1000000000000000000000000000000 is not a build",
        ),
        ([{"name": "x", "build": [1]}], "hosts[0] (x).build: not a build number: a list"),
        ([{"name": "x", "build": 1, "labels": ["a"]}], "hosts[0] (x).labels: expected a mapping"),
        (
            [{"name": "x", "build": 1, "features": ["warp"]}],
            "hosts[0] (x).features: unknown feature 'warp'; known: vsan",
        ),
        (
            [{"name": "x", "build": 1, "boot_device": {"kind": "usb", "dev": "a"}}],
            "(x).boot_device.dev: unknown field",
        ),
    ],
)
def test_inventory_errors_name_file_host_and_field(data: object, needle: str) -> None:
    with pytest.raises(InventoryError) as err:
        parse_inventory(data, "inv.yaml")
    assert str(err.value).startswith("inv.yaml") and needle in str(err.value)


def test_hostile_inventory_files_are_clear_errors(tmp_path: Path) -> None:
    p = tmp_path / "inv.yaml"
    p.write_bytes(b"- name: \xff\n  build: 1\n")
    with pytest.raises(InventoryError, match=r"inv\.yaml: not UTF-8 text"):
        load_inventory(p)
    p.write_text("- " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(InventoryError, match=r"inv\.yaml: nested more than 64 levels deep"):
        load_inventory(p)
    j = tmp_path / "inv.json"
    j.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(InventoryError, match=r"inv\.json: nested too deeply"):
        load_inventory(j)


def test_inventory_file_json_and_unreadable(tmp_path: Path) -> None:
    p = tmp_path / "inv.json"
    p.write_text('[{"name": "esx9", "build": 18426014}]')
    assert load_inventory(p)[0].name == "esx9"
    p.write_text("{broken")
    with pytest.raises(InventoryError, match="not valid JSON"):
        load_inventory(p)
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(tmp_path / "missing.yaml")
