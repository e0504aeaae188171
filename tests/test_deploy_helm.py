"""The Helm chart rendered by a real Go-template engine and read back as Kubernetes objects.

helm is not packaged for Debian, so tests/helmrender (a small Go program: text/template with
Debian's sprig, the function library Helm uses, and Helm's own functions, strict about missing
keys) renders deploy/helm/esxbot as ``helm template`` would. Skips when ``go`` or Debian's sprig and
ghodss/yaml sources are missing (CI installs golang-go golang-github-masterminds-sprig-dev
golang-github-ghodss-yaml-dev). Not covered: a Kubernetes API server's validation of the objects.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "esxbot"
SOURCE = Path(__file__).resolve().parent / "helmrender"
GOPATH = Path("/usr/share/gocode")
NEEDED = ("github.com/Masterminds/sprig", "github.com/ghodss/yaml")


@pytest.fixture(scope="session")
def helmrender(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("go") is None:
        pytest.skip("go not installed (Debian golang-go)")
    missing = [p for p in NEEDED if not (GOPATH / "src" / p).is_dir()]
    if missing:
        pytest.skip(f"Go sources missing under {GOPATH}: {', '.join(missing)} (Debian golang-…-dev)")
    binary = tmp_path_factory.mktemp("helmrender") / "helmrender"
    result = subprocess.run(
        ["go", "build", "-o", str(binary), "."], cwd=SOURCE, capture_output=True, text=True, timeout=300,
        env={**os.environ, "GOPATH": str(GOPATH), "GO111MODULE": "off"}, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return binary


def render(helmrender: Path, release: str, *values: Path, chart: Path = CHART) -> dict[str, dict[str, Any]]:
    """Rendered objects by kind (each kind once in this chart)."""
    flags = [arg for file in values for arg in ("-f", str(file))]
    result = subprocess.run(
        [str(helmrender), "-name", release, *flags, str(chart)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    by_kind = {doc["kind"]: doc for doc in objects}
    assert len(by_kind) == len(objects), "one object per kind expected"
    return by_kind


def dockerfile_value(instruction: str) -> str:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    found = re.findall(rf"^{instruction} (\S+)", text, re.MULTILINE)
    return str(found[-1])


def test_chart_renders_with_its_values(helmrender: Path) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    objects = render(helmrender, "esxbot")
    assert set(objects) == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}
    selector = {"app.kubernetes.io/name": "esxbot", "app.kubernetes.io/instance": "esxbot"}
    for obj in objects.values():
        assert obj["metadata"]["name"] == "esxbot"
        assert obj["metadata"]["labels"] == {
            **selector, "helm.sh/chart": "esxbot-0.1.0", "app.kubernetes.io/version": "0.1.0",
            "app.kubernetes.io/managed-by": "Helm",
        }  # fmt: skip
    assert chart["appVersion"] == project["version"]

    deployment = objects["Deployment"]["spec"]
    assert deployment["replicas"] == values["replicaCount"] == 2
    assert deployment["selector"]["matchLabels"] == deployment["template"]["metadata"]["labels"] == selector
    assert objects["Service"]["spec"]["selector"] == selector
    budget = objects["PodDisruptionBudget"]["spec"]
    assert budget == {
        "minAvailable": values["podDisruptionBudget"]["minAvailable"],
        "selector": {"matchLabels": selector},
    }
    pod = deployment["template"]["spec"]
    assert pod["securityContext"] == values["podSecurityContext"]
    assert str(pod["securityContext"]["runAsUser"]) == dockerfile_value("USER").split(":")[0]
    (container,) = pod["containers"]
    assert container["image"] == f"esxbot:{chart['appVersion']}"
    assert container["args"] == ["--config", "/etc/esxbot/config.yaml", "run"]
    assert container["securityContext"] == values["securityContext"]
    assert container["resources"] == values["resources"]
    port = int(dockerfile_value("EXPOSE"))
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ESXBOT_WEB_PORT"] == str(port) and env["ESXBOT_WEB_HOST"] == "0.0.0.0"
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert objects["Service"]["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["envFrom"] == [{"secretRef": {"name": values["existingSecret"]}}]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/esxbot"]]["configMap"]["name"] == "esxbot"
    assert volumes[mounts["/tmp"]] == {"name": "tmp", "emptyDir": {}}  # the root filesystem is read-only
    config = yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"])
    assert config == values["config"]
    checksum = deployment["template"]["metadata"]["annotations"]["checksum/config"]
    assert re.fullmatch(r"[0-9a-f]{64}", checksum)


def test_chart_options_render(helmrender: Path, tmp_path: Path) -> None:
    extra = tmp_path / "prod.yaml"
    options = {
        "image": {"tag": "1.2.3"},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "podDisruptionBudget": {"enabled": False},
        "env": {"ESXBOT_LOG_LEVEL": "debug"},
        "nodeSelector": {"disk": "ssd"},
        "config": {"auth": {"roles": {"slack:U024BE7LH": "admin"}}},
    }
    extra.write_text(yaml.safe_dump(options))
    objects = render(helmrender, "prod", extra)
    assert set(objects) == {"ConfigMap", "Deployment", "Service", "ServiceMonitor"}
    assert {obj["metadata"]["name"] for obj in objects.values()} == {"prod-esxbot"}
    monitor = objects["ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "prod"
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "esxbot:1.2.3"
    assert {"name": "ESXBOT_LOG_LEVEL", "value": "debug"} in container["env"]
    assert pod["nodeSelector"] == {"disk": "ssd"}
    config = yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"])
    assert config["auth"] == {"default_role": "viewer", "roles": {"slack:U024BE7LH": "admin"}}


def test_a_misspelt_value_fails_to_render(helmrender: Path, tmp_path: Path) -> None:
    chart = tmp_path / "esxbot"
    shutil.copytree(CHART, chart)
    service = chart / "templates" / "service.yaml"
    service.write_text(service.read_text().replace(".Values.web.port", ".Values.web.prot"))
    with pytest.raises(AssertionError, match='no entry for key "prot"'):
        render(helmrender, "esxbot", chart=chart)
