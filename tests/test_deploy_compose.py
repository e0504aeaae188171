"""deploy/docker-compose.yml brought up without Docker: its services started from their definitions.

No container runtime runs here, so each service becomes the process its image would run, with the
environment compose would give it:
- ``postgres``: Debian's PostgreSQL set up as the official image does from ``POSTGRES_USER``,
  ``POSTGRES_DB`` and ``POSTGRES_PASSWORD`` (that superuser, SCRAM over TCP, that database), then
  gated on the service's own ``healthcheck`` command (``depends_on: service_healthy``).
- ``esxbot``, scaled to two replicas as the README's compose command does: the Dockerfile's
  ``ENTRYPOINT`` + ``CMD`` from this checkout's virtualenv, with the Dockerfile's ``ENV`` overlaid by
  the service's ``environment`` (``${VAR:?…}``/``${VAR:-…}`` interpolated as compose does), the Slack
  tokens pointed at the Slack fake, and stopped with SIGTERM as ``docker compose stop`` does.
Rewritten because containers are not: the database host ``postgres:5432`` (container DNS) becomes
PostgreSQL's loopback address, and each replica serves on its own loopback port instead of 9090 in
its own network namespace; ``ESXBOT_SLACK_BASE_URL`` is added (the fake's address).
Not run here: the image build (scripts/image builds and smoke-tests the same Dockerfile), the
``read_only``/``tmpfs``/``cap_drop``/``no-new-privileges`` hardening and named volumes (kernel and
runtime features), and the ``matrix`` profile's Synapse (its image's ``/start.py``; Synapse itself
runs in tests/fixtures/synapse.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shlex
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.esxbot_lab import until
from tests.fixtures.postgres import PostgresServer, free_port, running_postgres
from tests.slack_fake import SlackFake

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
REPLICAS = 2  # README: docker compose -p esxbot up -d --scale esxbot=2
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        unset = name not in env or (op.startswith(":") and env[name] == "")
        if unset and op.endswith("?"):
            raise ValueError(f"{name}: {arg}")
        if unset and op.endswith("-"):
            return arg
        return env.get(name, "")

    return VARIABLE.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def test_interpolation_follows_compose() -> None:
    env = {"SET": "x", "EMPTY": ""}
    text = "${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET} $${SET}"
    assert interpolate(text, env) == "x d  d  ${SET}"
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD: set POSTGRES_PASSWORD"):
        interpolate("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", env)


def image_environment() -> dict[str, str]:
    """The final stage's ``ENV`` of deploy/Dockerfile (PATH aside: the virtualenv's bin is on it)."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    final = text[text.rindex("\nFROM ") :]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in shlex.split(line[4:]))
    env.pop("PATH")
    return env


def image_command() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text()
    found = dict(re.findall(r"^(ENTRYPOINT|CMD) (\[.*\])$", text, re.MULTILINE))
    command: list[str] = [*json.loads(found["ENTRYPOINT"]), *json.loads(found["CMD"])]
    return command


@dataclass
class Replica:
    name: str
    port: int
    process: asyncio.subprocess.Process
    log: Path

    async def get(self, session: aiohttp.ClientSession, path: str) -> tuple[int, str]:
        async with session.get(f"http://127.0.0.1:{self.port}{path}") as response:
            return response.status, await response.text()

    def tail(self) -> str:
        return f"--- {self.name} ---\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


async def healthy(service: dict[str, Any], server: PostgresServer) -> bool:
    """The service's ``healthcheck`` command, run where the server is (libpq's PGHOST/PGPORT)."""
    kind, *test = service["healthcheck"]["test"]
    argv = ["sh", "-c", test[0]] if kind == "CMD-SHELL" else test
    env = {**os.environ, "PATH": f"{server.bindir}:{os.environ['PATH']}"}
    env |= {"PGHOST": server.host, "PGPORT": str(server.port)}
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await process.wait() == 0


@pytest.fixture
async def replicas(tmp_path: Path, slack_fake: SlackFake) -> AsyncIterator[list[Replica]]:
    host_env = {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(12),
        "ESXBOT_SLACK_BOT_TOKEN": slack_fake.workspace.bot_token,
        "ESXBOT_SLACK_APP_TOKEN": slack_fake.workspace.app_token,
        "ESXBOT_SLACK_SIGNING_SECRET": slack_fake.signing_secret,
    }
    services = interpolate(yaml.safe_load((DEPLOY / "docker-compose.yml").read_text()), host_env)["services"]
    db = services["postgres"]["environment"]
    assert services["esxbot"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    with running_postgres(user=db["POSTGRES_USER"], password=db["POSTGRES_PASSWORD"]) as server:
        if db["POSTGRES_DB"] != "postgres":
            server.create_database(db["POSTGRES_DB"])
        check = services["postgres"]["healthcheck"]
        patience = check["retries"] * int(check["interval"].removesuffix("s"))
        await until(lambda: healthy(services["postgres"], server), patience, every=0.2)
        started: list[Replica] = []
        for number in range(1, REPLICAS + 1):
            environment = {**image_environment(), **services["esxbot"]["environment"]}
            environment["ESXBOT_DATABASE_URL"] = environment["ESXBOT_DATABASE_URL"].replace(
                "@postgres:5432/", f"@{server.host}:{server.port}/"
            )
            port = free_port()
            environment |= {"ESXBOT_WEB_HOST": "127.0.0.1", "ESXBOT_WEB_PORT": str(port)}
            environment["ESXBOT_SLACK_BASE_URL"] = slack_fake.base_url
            workdir = tmp_path / f"esxbot-{number}"  # the image's WORKDIR, a volume per container
            workdir.mkdir()
            program, *args = image_command()
            log = tmp_path / f"esxbot-{number}.log"
            with log.open("wb") as out:
                process = await asyncio.create_subprocess_exec(
                    Path(sys.executable).with_name(program), *args, cwd=workdir,
                    stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                    env={"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **environment},
                )  # fmt: skip
            started.append(Replica(f"esxbot-{number}", port, process, log))
        try:
            yield started
        finally:
            for replica in started:
                if replica.process.returncode is None:
                    replica.process.kill()
                    await replica.process.wait()


async def test_compose_services_start_and_answer_health_checks(replicas: list[Replica]) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:

        async def all_ready() -> bool:
            for replica in replicas:
                assert replica.process.returncode is None, replica.tail()
                try:
                    status, _ = await replica.get(session, "/readyz")
                except aiohttp.ClientError:
                    return False
                if status != 200:
                    return False
            return True

        try:
            await until(all_ready, 60, every=0.3)
        except TimeoutError:
            pytest.fail("replicas not ready within 60 s\n" + "\n".join(r.tail() for r in replicas))
        roles = []
        for replica in replicas:
            status, body = await replica.get(session, "/healthz")
            assert status == 200 and json.loads(body)["status"] == "ok", body
            readiness = json.loads((await replica.get(session, "/readyz"))[1])
            checks = {c["name"]: c["ok"] for c in readiness["checks"]}
            assert checks == {"database": True, "chat:slack": True}, readiness
            roles.append(readiness["role"])
            status, metrics = await replica.get(session, "/metrics")
            assert status == 200 and re.search(r"^esxbot_ready 1\.0$", metrics, re.MULTILINE)
        assert sorted(roles) == ["follower", "leader"]  # one leader through PostgreSQL
    for replica in replicas:
        replica.process.send_signal(signal.SIGTERM)
    for replica in replicas:
        async with asyncio.timeout(10):  # docker compose stop waits 10 s before SIGKILL
            assert await replica.process.wait() == 0, replica.tail()
