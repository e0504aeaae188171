"""The command-line contracts a newcomer uses: ``esxbot say`` in demo mode, text and JSON."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.runtime.version import REVISION_FILE, revision

ROOT = Path(__file__).resolve().parent.parent


def esxbot(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "ESXBOT_DATABASE_URL": str(tmp_path / "cli.db"), "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        input=stdin,
    )


def test_say_check_usb_host_json(tmp_path: Path) -> None:
    out = esxbot(tmp_path, "say", "check esx01", "--json")
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    host = reply["data"]["host"]
    assert host["build"] == 17867351
    assert host["release_name"] == "ESXi 7.0 Update 2a"
    assert host["boot_device"]["kind"] == "usb"
    assert host["boot_device"]["driver"] == "vmkusb"
    assert reply["ok"] is True and {b["type"] for b in reply["blocks"]} >= {"fields", "text"}


def test_say_hosts_lists_every_demo_host(tmp_path: Path) -> None:
    out = esxbot(tmp_path, "say", "hosts")
    assert out.returncode == 0, out.stderr
    for name in (
        "esx01.lab.local",
        "esx02.lab.local",
        "esx03.lab.local",
        "esx04.lab.local",
        "pflex01.corp.example",
    ):
        assert name in out.stdout
    assert "9 hosts" in out.stdout


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("frobnicate x", "Unknown command `frobnicate`"),
        ('check "esx01', "unbalanced"),
        ("check esx01; rm -rf / $(reboot) `id`", "no host or cluster `esx01;`"),
        ("check " + "A" * 3000, "limit is 2000"),
        ("check \x07esx01", "control character"),
    ],
)
def test_say_bad_input_is_a_clear_error(tmp_path: Path, text: str, needle: str) -> None:
    out = esxbot(tmp_path, "say", text)
    assert out.returncode == 1
    assert needle in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_run_demo_console_answers_then_quits(tmp_path: Path) -> None:
    out = esxbot(tmp_path, "run", stdin="help\ncheck esx03\nquit\n")
    assert out.returncode == 0, out.stderr
    assert "Commands for you (admin)" in out.stdout
    assert "ssd (t10.ATA" in out.stdout


def test_bad_config_file_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "esxbot.yaml"
    cfg.write_text("confirm_ttl: soon\n")
    out = esxbot(tmp_path, "--config", str(cfg), "say", "hosts")
    assert out.returncode == 2
    assert "esxbot.yaml" in out.stderr and "confirm_ttl" in out.stderr


def test_version_names_the_package_version_and_the_commit(tmp_path: Path) -> None:
    out = esxbot(tmp_path, "--version")
    assert out.returncode == 0, out.stderr
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    found = re.fullmatch(rf"esxbot {re.escape(version)} \(commit (\S+)\)\n", out.stdout)
    assert found, out.stdout
    if (ROOT / ".git").exists() and shutil.which("git"):
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert found[1].removesuffix("-dirty") == head.stdout.strip()


def test_revision_baked_in_wins_and_an_installed_copy_does_not_ask_git(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "bot" / "runtime"
    package.mkdir(parents=True)
    assert revision(package) == "unknown"
    (package / REVISION_FILE).write_text("0123abc\n")
    assert revision(package) == "0123abc"
