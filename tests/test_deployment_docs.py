"""The production deployment as written (issue 12, Build 1; the brief: the README's production
section, docker-compose.yml and docs/configuration.md say the same thing, and a test holds them
to it). Docker does not run here, so the compose file's own services are started as real
processes: each service's command with that service's environment (secrets from a generated
.env, the hosts rewritten to this test's PostgreSQL and Redis), in production mode."""

from __future__ import annotations

import json
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.utils import timezone

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.registry.choices import DeviceState
from ops.registry.lifecycle.services import report_loss
from ops.registry.models import AccessEvent, Device
from streams import credentials as feed
from streams import device_acl, names
from tests.conftest import ROOT, database_url_for_subprocess
from tests.factories import publish, tap
from tests.sip2_client import SIP2Client, wait_for_port

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
PRODUCTION = README.split("## Production", 1)[1].split("\n## ", 1)[0]
REQUIRED_SECRETS = ("SECRET_KEY", "AUDIT_HMAC_KEY", "CAMPUSCARD_BACKUP_KEY")
PROCESSES = {
    "web": "daphne",
    "processor": "campuscard process",
    "relay": "campuscard relay",
    "supervise": "campuscard supervise",
    "sip2": "campuscard sip2",  # the library's SIP2 server (issue 18, Build 5)
}
TEST_ONLY = {"CAMPUSCARD_TEST_SQLITE"}
SIP2_LOGIN, SIP2_PASSWORD = "LIB-SC01", "compose-sip2-secret"


def _settings_read() -> set[str]:
    """Every environment variable the project reads."""
    found: set[str] = set()
    for path in (ROOT / "ops").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'env(?:str|int|bool|list)\(\s*"([A-Z][A-Z0-9_]+)"', text))
        found |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z][A-Z0-9_]+)"', text))
        found |= set(re.findall(r'^ENV = "([A-Z][A-Z0-9_]+)"', text, re.M))
    return found - TEST_ONLY - {"DJANGO_SETTINGS_MODULE"}


def test_every_setting_the_project_reads_is_in_the_configuration_page():
    missing = sorted(name for name in _settings_read() if f"`{name}`" not in CONFIGURATION)
    assert not missing, f"docs/configuration.md does not describe {missing}"


def test_compose_runs_every_process_with_every_required_secret():
    services = COMPOSE["services"]
    for service, command in PROCESSES.items():
        assert " ".join(services[service]["command"]).startswith(command), service
        environment = services[service]["environment"]
        for name in (*REQUIRED_SECRETS, "DATABASE_URL", "REDIS_URL", "CAMPUSCARD_PRODUCTION"):
            assert name in environment, f"{service} lacks {name}"
    assert services["migrate"]["command"][:2] == ["campuscard", "migrate"]
    # least privilege at the edge (issue 12, Build 6): Redis has a password the agents never get,
    # and every agent its own user, made by the supervisor from the registry
    assert "--requirepass" in services["redis"]["command"]
    assert "${REDIS_PASSWORD:?" in services["redis"]["command"][services["redis"]["command"].index("--requirepass") + 1]
    for service in PROCESSES:
        environment = services[service]["environment"]
        assert environment["DEVICE_REDIS_ACL"] == "1", service
        assert "${REDIS_PASSWORD:?" in environment["REDIS_URL"], service


def test_compose_keeps_photos_and_backups_where_every_process_that_needs_them_finds_them():
    """Photos are written by any web process and read by the supervisor's backup (R-SEC-4); the
    backups outlive the container; the image's pg_dump matches the server's major version."""
    services = COMPOSE["services"]
    web, supervise = services["web"].get("volumes", []), services["supervise"].get("volumes", [])
    media = [v for v in web if v.endswith(":/var/lib/campuscard/media")]
    assert media and media[0] in supervise
    assert any(v.startswith("backups:") and v.endswith(":/var/lib/campuscard/backups") for v in supervise)
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "postgresql-client" in dockerfile and "slim-bookworm" in dockerfile  # Debian 12: pg_dump 15
    assert services["postgres"]["image"] == "postgres:15"


def test_the_readme_production_section_names_the_same_processes_and_secrets():
    for command in (*PROCESSES.values(), "campuscard migrate"):
        assert command in PRODUCTION, command
    for name in REQUIRED_SECRETS:
        assert name in PRODUCTION, name
    assert "docker compose up" in PRODUCTION and "configuration.md" in PRODUCTION


def _interpolate(value: str, dotenv: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} against the .env."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if name in dotenv:
            return dotenv[name]
        if op == ":?":
            raise AssertionError(f"compose needs {name} in .env: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{([A-Z][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _service(name: str, dotenv: dict[str, str], test_env: dict[str, str], port: int) -> tuple[list[str], dict]:
    spec: dict[str, Any] = COMPOSE["services"][name]
    env = {k: _interpolate(str(v), dotenv) for k, v in spec["environment"].items()}
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert re.fullmatch(r"redis://default:[^@/]+@redis:6379/\d+", env["REDIS_URL"]), env["REDIS_URL"]
    env.update(DATABASE_URL=test_env["DATABASE_URL"], REDIS_URL=test_env["REDIS_URL"])  # the hosts, rewritten
    command = list(spec["command"])
    if command[0] == "campuscard":
        command = [sys.executable, "-m", "ops.cli", *command[1:]]
    elif command[0] == "daphne":
        command = [str(Path(sys.executable).parent / "daphne"), *command[1:]]
        command[command.index("-p") + 1] = str(port)
        command[command.index("-b") + 1] = "127.0.0.1"
    if "SIP2_PORT" in env:  # the SIP2 server: on this test's own port, on loopback
        env.update(SIP2_PORT=str(_free_port()), SIP2_BIND="127.0.0.1")
    base = {k: v for k, v in test_env.items() if k in ("PATH", "HOME", "LANG", "CAMPUSCARD_VAR_DIR", "PYTHONPATH")}
    return command, {**base, **env, "PYTHONUNBUFFERED": "1"}


@pytest.mark.django_db(transaction=True)
def test_the_compose_services_run_as_written(campus, redis_client, subprocess_env, tmp_path):
    from django.conf import settings

    if not database_url_for_subprocess().startswith("postgres://"):
        pytest.fail("the compose deployment runs on PostgreSQL: run this in pass 1 (scripts/test.sh)")
    dotenv = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "AUDIT_HMAC_KEY": settings.AUDIT_HMAC_KEY,  # one deployment, one audit chain key
        "CAMPUSCARD_BACKUP_KEY": secrets.token_hex(32),
        "POSTGRES_PASSWORD": "unused-here",
        "REDIS_PASSWORD": "unused-here",  # the test's Redis has none: the hosts are rewritten
        "SIP2_ACCOUNTS": f"{SIP2_LOGIN}:{SIP2_PASSWORD}",  # the library circulation system's login
    }
    # a vehicle gate last heard an hour ago: the supervisor's first round marks it silent (R-DEV-2)
    Device.objects.filter(pk=campus.vehicle_gate.pk).update(
        last_seen_at=timezone.now() - timedelta(hours=1), state=DeviceState.ONLINE
    )
    port = _free_port()
    sip2_port = 0
    procs: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    try:
        for name in PROCESSES:
            command, env = _service(name, dotenv, subprocess_env, port)
            sip2_port = int(env["SIP2_PORT"]) if name == "sip2" else sip2_port
            logs[name] = tmp_path / f"{name}.log"
            with logs[name].open("w") as out:
                procs[name] = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline:
            for name, proc in procs.items():
                assert proc.poll() is None, f"{name} exited: {logs[name].read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    health = response.status
                    break
            except OSError:
                time.sleep(0.3)
        assert health == 200, logs["web"].read_text()[-2000:]

        # a tap through the processor …
        event = tap(uid=campus.cards[0].uid)
        publish(redis_client, [event])
        deadline = time.monotonic() + 30
        while not AccessEvent.objects.filter(event_id=event.event_id).exists():
            assert time.monotonic() < deadline, logs["processor"].read_text()[-2000:]
            time.sleep(0.1)
        # … and a loss report through the relay, onto the readers' credential feed
        nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
        report_loss(card=campus.cards[1], operator=nic, basis="本人挂失")
        deadline = time.monotonic() + 30
        while True:
            _version, cards = feed.load_snapshot(redis_client)
            change = cards.get(campus.cards[1].uid.upper())
            if change is not None and json.loads(change.e)["status"] == "lost":
                break
            assert time.monotonic() < deadline, logs["relay"].read_text()[-2000:]
            time.sleep(0.1)
        assert int(redis_client.get(names.CREDENTIALS_VERSION)) > len(campus.cards)
        # … and the timed jobs in the supervisor
        deadline = time.monotonic() + 30
        while Device.objects.get(pk=campus.vehicle_gate.pk).state != DeviceState.SILENT:
            assert time.monotonic() < deadline, logs["supervise"].read_text()[-2000:]
            time.sleep(0.1)
        assert Alert.objects.filter(kind=AlertKind.UPLOAD_STOPPED, device=campus.vehicle_gate).exists()
        # … and the library's SIP2 server answers from the same registry: the lost card is invalid
        wait_for_port(sip2_port, procs["sip2"], logs["sip2"])
        sc = SIP2Client(sip2_port)
        try:
            assert sc.login(SIP2_LOGIN, SIP2_PASSWORD).fixed == "1"
            assert sc.patron_status(campus.cards[0].uid).field("BL") == "Y"
            assert sc.patron_status(campus.cards[1].uid).field("BL") == "N"
        finally:
            sc.close()
        # … and every keyed device's own Redis user, made by the supervisor (DEVICE_REDIS_ACL=1)
        agents = set(Device.objects.exclude(key_hex="").values_list("code", flat=True))
        assert agents
        deadline = time.monotonic() + 30
        while not agents <= device_acl.device_users(redis_client):
            assert time.monotonic() < deadline, logs["supervise"].read_text()[-2000:]
            time.sleep(0.1)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for agent_id in device_acl.device_users(redis_client):  # the machine's shared Redis: leave no user
            device_acl.remove(redis_client, agent_id)
