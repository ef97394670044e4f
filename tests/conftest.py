"""Shared fixtures. Tests use the real services: Redis (a scratch db given by REDIS_URL),
the database from DATABASE_URL (PostgreSQL in CI), real subprocesses and a real browser."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent

if "REDIS_URL" not in os.environ:
    raise pytest.UsageError(
        "REDIS_URL is not set: run the tests with scripts/test.sh, or point REDIS_URL at a "
        "scratch Redis database (the tests flush it)."
    )


from django.contrib.auth.hashers import PBKDF2PasswordHasher  # noqa: E402  (after the REDIS_URL check)


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 at 1,000 rounds instead of 1,000,000 (~0.3 s a password on the CI machine,
    and the suite sets and checks a few hundred). Its hashes are ordinary ``pbkdf2_sha256`` ones
    carrying their round count, so the servers a test starts (production settings) check them as
    they are — and re-hash at full strength on a sign-in, as after a Django upgrade."""

    iterations = 1_000


@pytest.fixture(autouse=True)
def quick_password_hashes(settings):
    """Passwords set or checked in a test's own process are hashed with the quick hasher; no
    test is about PBKDF2's cost (the production settings keep Django's default)."""
    settings.PASSWORD_HASHERS = ["tests.conftest.QuickPBKDF2PasswordHasher", *settings.PASSWORD_HASHERS]


@pytest.fixture(scope="session", autouse=True)
def quick_table_flush():
    """A transactional test's teardown empties every table (Django's ``flush``): on PostgreSQL one
    ``TRUNCATE`` of all ~80 tables, which recreates each table's files — 1.5 to 3.5 s a test on
    the CI machine, over the suite's few hundred transactional tests. Here the same tables are
    emptied by ``DELETE`` in one transaction with the foreign-key and row triggers off
    (``session_replication_role = replica``, as a TRUNCATE does not fire them either): 0.2 s.
    Sequences are not reset by either (pytest-django asks for no reset); a flush that asks for
    a reset or for CASCADE, or a database user who may not set the role, gets Django's TRUNCATE."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush
    may_set_role: dict[str, bool] = {}

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        alias = self.connection.alias
        if alias not in may_set_role:
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                row = cursor.fetchone()
            may_set_role[alias] = bool(row and row[0])
        if reset_sequences or allow_cascade or not tables or not may_set_role[alias]:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return [
            "SET LOCAL session_replication_role = replica",  # this transaction only (execute_sql_flush's)
            *(f"DELETE FROM {self.quote_name(table)}" for table in tables),
        ]

    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign]  # the tests' flush, for this session
    yield
    DatabaseOperations.sql_flush = truncate  # type: ignore[method-assign]  # Django's own again


@pytest.fixture(autouse=True)
def feed_keyring(settings):
    """Every test's credential feed is signed with the tests' key (tests/signing_keys.py)."""
    from tests.signing_keys import write_keyring

    path = Path(settings.VAR_DIR) / "test-feed-keys" / "keyring.json"
    write_keyring(path)
    settings.CREDENTIAL_KEYRING = str(path)
    return path


@pytest.fixture(autouse=True)
def audit_checkpoints(settings, tmp_path):
    """Every test's audit checkpoints (issue 20) in a file of its own, empty at the start: never a
    checkpoint of another database (var/ of a demo, another test)."""
    path = tmp_path / "audit-checkpoints.jsonl"
    settings.AUDIT_CHECKPOINT_FILE = str(path)
    return path


@pytest.fixture
def redis_client():
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def campus(db):
    """A small registered campus: departments, one dorm, gates, a dorm door and cards."""
    from tests.factories import make_campus

    return make_campus()


def database_url_for_subprocess() -> str:
    """The URL of the database this test runs on, for processes the test starts."""
    from django.db import connection

    cfg = connection.settings_dict
    if cfg["ENGINE"].endswith("sqlite3"):
        name = str(cfg["NAME"])
        if name == ":memory:" or name.startswith("file:memorydb"):
            raise RuntimeError("set CAMPUSCARD_TEST_SQLITE to a file so subprocesses see the test DB")
        return f"sqlite:///{name}"
    user = cfg.get("USER") or ""
    host = cfg.get("HOST") or "127.0.0.1"
    port = cfg.get("PORT") or 5432
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{cfg['NAME']}"


@pytest.fixture
def subprocess_env(transactional_db, tmp_path):
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=settings.REDIS_URL,
        CAMPUSCARD_VAR_DIR=str(tmp_path / "var"),
        PYTHONUNBUFFERED="1",
        SUPERVISE_S="1",
        CREDENTIAL_KEYRING=settings.CREDENTIAL_KEYRING,  # the tests' feed key (tests/signing_keys.py)
    )
    env.pop("CAMPUSCARD_TEST_SQLITE", None)
    return env


def campuscard_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ops.cli", *args]


def bench_figures(var_dir, *args: str, timeout: float, env: dict[str, str] | None = None) -> dict:
    """Run `campuscard bench <args> --json` on its own scratch system under ``var_dir`` (with
    ``env`` added to the environment); its figures, from the JSON object on the last line."""
    import json
    import os
    import subprocess

    env = dict(os.environ, CAMPUSCARD_VAR_DIR=str(var_dir), **(env or {}))
    result = subprocess.run(
        campuscard_cmd("bench", *args, "--json"), env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def stack(campus, redis_client, subprocess_env):
    """Real daphne, a real processor and a real supervisor (the timed jobs) on the test database;
    yields the base URL."""
    import signal
    import subprocess

    from tests.browser import free_port, stop_all, wait_http

    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ops.asgi:application"], env=subprocess_env
    )
    processor = subprocess.Popen(campuscard_cmd("process", "--name", "browser-test"), env=subprocess_env)
    supervisor = subprocess.Popen(campuscard_cmd("supervise", "--name", "browser-test"), env=subprocess_env)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=web)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_all([supervisor, processor, web], signal.SIGTERM)
