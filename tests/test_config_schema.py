"""One schema layer: every configuration mistake is exit 2 naming file and key, never a traceback."""

from __future__ import annotations

import dataclasses
import random
import time
import tracemalloc
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from bot.config import Settings, load_settings
from bot.runtime.cli import main
from bot.runtime.logconfig import secret_values
from bot.runtime.sections import read_sections

CASES = [
    ("sorces: []\n", "sorces: unknown setting (did you mean sources?)"),
    ("alertz: {}\n", "alertz: unknown setting (did you mean alerts?)"),
    ("jobs: {vm_policy: foo}\n", "jobs.vm_policy: expected one of power-off, leave, abort, got 'foo'"),
    ("jobs: {max_parallel: 0}\n", "jobs.max_parallel: expected a number between 1 and 32"),
    ("jobs: {methods: {gold: ftp}}\n", "jobs.methods.gold: expected one of patch-manager, vlcm, esxcli"),
    ("jobs: {esxcli: {known_hosts: rel/path}}\n", "jobs.esxcli: known_hosts must be an absolute path"),
    ("alerts: {group_wait: soon}\n", "alerts.group_wait: expected a duration such as 30s"),
    ("alerts: {group_wiat: 1m}\n", "alerts.group_wiat: unknown setting (did you mean group_wait?)"),
    ("sources: [{kind: atom, url: 'http://x', interval: 30s}]\n", "sources[0].interval: expected a number"),
    ("sources: [{kind: rss, url: 'http://x'}]\n", "sources[0].kind: expected one of atom, catalog, notes"),
    ("sources: [{kind: atom, url: 'ftp://x'}]\n", "sources[0]: url must be http(s)"),
    ("sources: {kind: atom}\n", "sources: expected a list, got a mapping"),
    ("bmcs: [{name: a, url: 'https://b', username: u, password: hunter2}]\n", "bmcs[0].password"),
    ("bmcs: [{name: a, url: 'https://b', username: u}]\n", "bmcs[0].password: required setting is missing"),
    ("auth: {default_role: admin}\n", "auth.default_role: expected one of viewer, none, got 'admin'"),
    ("auth: {roles: {'slack:U1': god}}\n", "auth.roles.slack:U1: expected one of viewer, operator, admin"),
    ("slack: {bot_token: xoxb-1, mode: http}\n", "slack: mode http needs signing_secret"),
    ("slack: {mode: carrier-pigeon}\n", "slack.mode: expected one of socket, http"),
    ("syslog: {udp_port: 99999}\n", "syslog.udp_port: expected a number between 0 and 65535, got 99999"),
    ("syslog: {udp_port: abc}\n", "syslog.udp_port: expected a whole number, got 'abc'"),
    ("syslog: {tls_port: 1514}\n", "syslog: tls_port needs tls_cert and tls_key"),
    ("syslog: {bind: 0.0.0.0, udp_prot: 514}\n", "syslog.udp_prot: unknown setting (did you mean udp_port?)"),
    ("pager: {webhooks: {ops: {secret: k}}}\n", "pager.webhooks.ops.url: required setting is missing"),
    (
        "pager: {pagerduty: {service: {a: k}}}\n",
        "pager.pagerduty.service: unknown setting (did you mean services?)",
    ),
    ("oncall: {rotaton: {}}\n", "oncall.rotaton: unknown setting (did you mean rotation?)"),
    ("oncall: {escalation: [{notify: room, afer: 1m}]}\n", "oncall.escalation[0].afer: unknown setting"),
    ("confirm_ttl: 99999999999999d\n", "confirm_ttl: expected a duration"),
    ("confirm_ttl: 1s\n", "confirm_ttl: expected a number between 10 and 86400"),
    ("web_port: -1\n", "web_port: expected a number between 0 and 65535"),
    ("vcenters: [{name: vc1}]\n", "vcenters[0].host: required setting is missing"),
    (
        "vcenters: [{name: vc1, host: h, port: 0}]\n",
        "vcenters[0].port: expected a number between 1 and 65535",
    ),
    ("match_rules: rules.yaml\n", "match_rules: expected a list of rule files"),
    ("console_user: [a, b]\n", "console_user: expected text, got a list"),
    ("- a\n", "the top level must be a mapping"),
    ("a: [\n", "not valid YAML"),
]


def _check(tmp_path: Path, text: str | bytes, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    cfg = tmp_path / "esxbot.yaml"
    cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
    code = main(["config", "check", "--config", str(cfg)])
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize(("text", "needle"), CASES)
def test_each_mistake_is_exit_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    code, err = _check(tmp_path, text, capsys)
    assert code == 2
    assert err.startswith(f"esxbot: configuration error: {tmp_path / 'esxbot.yaml'}: ")
    assert needle in err and "Traceback" not in err


def test_env_mistakes_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ESXBOT_WEB_PORT", "http")
    assert main(["config", "check"]) == 2
    assert "environment ESXBOT_WEB_PORT: web_port: expected a whole number" in capsys.readouterr().err


def test_config_check_prints_effective_settings_with_secrets_hidden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "esxbot.yaml"
    cfg.write_text(
        "database_url: postgresql://bot:pgpass-1@db/esxbot\n"
        "slack: {bot_token: xoxb-tok-1, signing_secret: sign-1, mode: http, http_host: 0.0.0.0}\n"
        "pager: {pagerduty: {services: {default: routing-key-1}},\n"
        "        webhooks: {ops: {url: 'https://h', secret: hmac-1}}}\n"
        "jobs: {guest_timeout: 5m, maintenance_retry_delay: 45s}\n"
        "alerts: {for: 2m, group_wait: 5s}\n"
        "sources: [{kind: atom, url: 'https://example.org/feed', interval: 1h}]\n"
    )
    assert main(["--config", str(cfg), "config", "check"]) == 0
    out = capsys.readouterr().out
    shown = yaml.safe_load(out)
    for secret in ("pgpass-1", "xoxb-tok-1", "sign-1", "routing-key-1", "hmac-1"):
        assert secret not in out
    assert shown["database_url"] == "postgresql://bot:***@db/esxbot"
    assert shown["pager"]["pagerduty"]["services"] == {"default": "***"}
    assert shown["slack"]["http_host"] == "0.0.0.0" and shown["slack"]["bot_token"] == "***"
    assert shown["jobs"]["guest_timeout"] == 300.0 and shown["jobs"]["maintenance_retry_delay"] == 45.0
    assert shown["alerts"]["pending_for"] == "120s" and shown["alerts"]["group_wait"] == "5s"
    assert shown["sources"][0]["interval"] == 3600.0
    # --config after the subcommand means the same
    assert main(["config", "check", "--config", str(cfg)]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == shown


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (b"slack:\n  bot_token: \xff\xfe\n", "not UTF-8 text (bad byte at offset 20)"),
        ("a: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested more than 64 levels deep"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            )
            + "console_user: *i\n",
            "console_user: expected text, got a list",  # a billion laughs, refused unwalked
        ),
        (
            "matrix: {allowed_rooms: &a [x]}\nconsole_user: [" + "*a, " * 300 + "]\n",
            "more than 256 YAML aliases",
        ),
    ],
)
def test_hostile_files_fail_fast_and_small(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | bytes, needle: str
) -> None:
    tracemalloc.start()
    started = time.monotonic()
    code, err = _check(tmp_path, text, capsys)
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert code == 2 and needle in err and "Traceback" not in err
    assert elapsed < 1.0 and peak < 64 * 1024 * 1024


KEYS = [
    "sources", "sorces", "alerts", "jobs", "bmcs", "pager", "syslog", "oncall", "auth", "slack", "matrix",
    "vcenters", "match_rules", "confirm_ttl", "web_port", "console_user", "demo", "kind", "url", "interval",
    "group_wait", "vm_policy", "max_parallel", "methods", "esxcli", "udp_port", "tls_port", "webhooks",
    "pagerduty", "services", "rotation", "escalation", "people", "roles", "default_role", "mode", "name",
    "host", "port", "password", "username", "timeout", "notify", "after", "enabled", "rule_files",
]  # fmt: skip
SCALARS = [
    None, True, False, 0, -1, 1, 65536, 2**70, 1.5, float("inf"), "", "x", "30s", "1h", "soon",
    "99999999999999d", "http://x", "env:X", "admin", "http", "atom", "power-off", "\u00e9\u0000",
]  # fmt: skip


def _random_value(rng: random.Random, depth: int) -> object:
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return rng.choice(SCALARS)
    if roll < 0.75:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(KEYS): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_a_thousand_random_documents_never_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(13)
    outcomes = {0: 0, 2: 0}
    for _ in range(1000):
        doc = {rng.choice(KEYS): _random_value(rng, 1) for _ in range(rng.randint(1, 4))}
        text = yaml.safe_dump(doc, allow_unicode=True) if rng.random() < 0.9 else yaml.safe_dump(doc)[:-3]
        code, err = _check(tmp_path, text, capsys)
        assert code in outcomes, err
        outcomes[code] += 1
        if code == 2:
            assert err.startswith(f"esxbot: configuration error: {tmp_path / 'esxbot.yaml'}: "), err
            assert "Traceback" not in err and len(err) < 1000
    assert outcomes[2] > 900


def test_env_example_lists_every_scalar_setting() -> None:
    listed = {
        line.split("=", 1)[0]
        for line in (Path(__file__).parent.parent / ".env.example").read_text().splitlines()
        if line.startswith("ESXBOT_")
    }
    expected = set()
    for f in dataclasses.fields(Settings):
        value = getattr(Settings(), f.name)
        if dataclasses.is_dataclass(value):
            expected |= {
                f"ESXBOT_{f.name}_{g.name}".upper()
                for g in dataclasses.fields(value)
                if not isinstance(getattr(value, g.name), Mapping)
            }
        elif f.name not in ("vcenters", "extra", "base_dir", "config_file"):
            expected.add(f"ESXBOT_{f.name}".upper())
    assert expected - listed == set()
    env = load_settings(None, env={}, dotenv=Path(__file__).parent.parent / ".env.example")
    assert env == load_settings(None, env={}, dotenv=None)


def test_every_secret_reaches_the_log_redactor(tmp_path: Path) -> None:
    cfg = tmp_path / "esxbot.yaml"
    cfg.write_text(
        "pager: {pagerduty: {services: {default: routing-key-1}},\n"
        "        webhooks: {ops: {url: 'https://h', secret: hmac-1}}}\n"
        "slack: {bot_token: xoxb-tok-1}\n"
    )
    settings = load_settings(cfg, env={}, dotenv=None)
    sections = read_sections(settings)
    assert {"routing-key-1", "hmac-1", "xoxb-tok-1"} <= set(secret_values((settings, sections)))
    assert "routing-key-1" not in repr(sections) and "hmac-1" not in repr(sections)
