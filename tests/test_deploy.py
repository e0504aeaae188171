"""deploy/: Dockerfile, docker-compose.yml, Helm chart and systemd unit, checked without Docker or helm.

Each file is parsed and held to its contract (non-root, probes, hardening, PostgreSQL for replicas);
the Dockerfile's build stage is exercised by building the wheel from exactly the files it copies;
``docker-compose config`` and ``systemd-analyze verify`` run when those tools are installed. The
image itself is built and smoke-tested by scripts/image, the compose services are started in
test_deploy_compose.py and the chart is rendered in test_deploy_helm.py.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "esxbot"


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        if op.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((op.upper(), rest.strip()))
    return stages


def test_dockerfile_is_multi_stage_non_root_with_healthcheck() -> None:
    build, final = dockerfile_stages()
    assert [rest for op, rest in build if op == "FROM"] == ["${PYTHON_IMAGE} AS build"]
    args = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11-slim", args)
    final_ops = dict(final)
    user = final_ops["USER"].split(":")[0]
    assert user not in ("0", "root")
    assert "COPY" in final_ops and final_ops["COPY"].startswith("--from=build /opt/esxbot")
    runs = " ".join(rest for op, rest in final if op == "RUN")
    assert not re.search(r"apt-get|gcc|build-essential|pip install", runs)  # no build tools in the image
    health = final_ops["HEALTHCHECK"]
    port = final_ops["EXPOSE"]
    assert f"127.0.0.1:{port}/healthz" in health
    assert f"ESXBOT_WEB_PORT={port}" in final_ops["ENV"]
    assert final_ops["ENTRYPOINT"] == '["esxbot"]' and final_ops["CMD"] == '["run"]'


def test_dockerfile_labels_version_revision_and_source() -> None:
    _, final = dockerfile_stages()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"ARG VERSION={version}\n" in (DEPLOY / "Dockerfile").read_text()  # plain docker build
    assert {rest for op, rest in final if op == "ARG"} >= {"VERSION", "REVISION", "SOURCE"}
    labels = " ".join(rest for op, rest in final if op == "LABEL")
    for key, arg in (("version", "VERSION"), ("revision", "REVISION"), ("source", "SOURCE")):
        assert f'org.opencontainers.image.{key}="${{{arg}}}"' in labels


def test_dockerfile_installs_the_package_the_way_the_readme_does(tmp_path: Path) -> None:
    build, _ = dockerfile_stages()
    run = next(rest for op, rest in build if op == "RUN")
    readme = (ROOT / "README.md").read_text()
    assert ".venv/bin/pip install -q -e ." in readme
    assert "/opt/esxbot/bin/pip install -q ." in run  # the README's install, not editable
    sources = [s for op, rest in build if op == "COPY" for s in shlex.split(rest)[:-1]]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert set(sources) >= {"pyproject.toml", "README.md", "bot", "handlers"}
    assert 'include = ["bot*", "handlers*"]' in pyproject
    src = tmp_path / "src"
    src.mkdir()
    for source in sources:
        (shutil.copytree if (ROOT / source).is_dir() else shutil.copy)(ROOT / source, src / source)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "out"), str(src)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if result.returncode != 0 and re.search(r"(?i)connection|no matching distribution", result.stderr):
        pytest.skip(f"PyPI unreachable for the build backend: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "out").glob("esxbot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = {p.name for p in (ROOT / "bot" / "store" / "migrations").glob("*.sql")}
    assert {f"bot/store/migrations/{m}" for m in migrations} <= names
    assert {
        "bot/runtime/cli.py",
        "bot/runtime/web.py",
        "bot/runtime/leader.py",
        "bot/data/esxi_builds.csv",
    } <= names
    assert any(n.startswith("handlers/") for n in names)


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_the_bot_on_postgres_with_optional_synapse() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "esxbot", "synapse"}
    bot = services["esxbot"]
    assert bot["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert bot["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert bot["environment"]["ESXBOT_DATABASE_URL"].startswith("postgresql://esxbot:${POSTGRES_PASSWORD")
    assert "healthcheck" in services["postgres"]
    assert services["synapse"]["profiles"] == ["matrix"]
    assert bot["read_only"] is True and bot["cap_drop"] == ["ALL"]
    assert "ports" not in bot  # replicas would collide on a host port


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_config_accepts_the_file() -> None:
    env = {**os.environ, "POSTGRES_PASSWORD": "test-only"}
    for extra in ([], ["--profile", "matrix"]):
        result = subprocess.run(
            ["docker-compose", "-f", str(DEPLOY / "docker-compose.yml"), *extra, "config", "--services"],
            capture_output=True, text=True, timeout=60, env=env, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert set(result.stdout.split()) == {"postgres", "esxbot", "synapse"}


def lookup(values: dict[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_helm_chart_templates_are_sane() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["name"]) == ("v2", "esxbot")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["replicaCount"] == 2
    assert values["serviceMonitor"]["enabled"] is False
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    defined = set(re.findall(r'define "([^"]+)"', helpers))
    templates = {p.name: p.read_text() for p in (CHART / "templates").iterdir()}
    for name, text in templates.items():
        actions = re.findall(r"{{-?\s*(.*?)\s*-?}}", text, re.DOTALL)
        assert text.count("{{") == text.count("}}") == len(actions), name
        opened = sum(1 for a in actions if re.match(r"(if|with|range|define)\b", a))
        assert opened == sum(1 for a in actions if a == "end"), name
        for ref in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text):
            assert lookup(values, ref), f"{name}: .Values.{ref} is not in values.yaml"
        for used in re.findall(r'include "([^"]+)"', text):
            assert used in defined, f"{name}: include {used} is not defined"
    deployment = templates["deployment.yaml"]
    assert re.search(r"livenessProbe:\s+httpGet:\s+path: /healthz", deployment)
    assert re.search(r"readinessProbe:\s+httpGet:\s+path: /readyz", deployment)
    assert "secretRef:" in deployment and "{{ .Values.existingSecret }}" in deployment
    assert "configMap:" in deployment and "mountPath: /etc/esxbot" in deployment
    assert templates["servicemonitor.yaml"].startswith("{{- if .Values.serviceMonitor.enabled }}")
    assert "path: /metrics" in templates["servicemonitor.yaml"]


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "systemd" / "esxbot.service")
    return parser


def test_systemd_unit_is_hardened() -> None:
    service = unit()["Service"]
    assert service["User"] == "esxbot" and service["ExecStart"].endswith(
        "esxbot --config /etc/esxbot/config.yaml run"
    )
    required = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "StateDirectory": "esxbot", "UMask": "0077",
    }  # fmt: skip
    assert {k: service.get(k) for k in required} == required
    assert service["EnvironmentFile"].startswith("-/etc/esxbot/")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    text = (DEPLOY / "systemd" / "esxbot.service").read_text()
    copy = tmp_path / "esxbot.service"
    copy.write_text(text.replace("/opt/esxbot/bin/esxbot", shutil.which("true") or "/bin/true"))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    problems = [line for line in result.stderr.splitlines() if "esxbot.service" in line]
    assert problems == [], result.stderr
