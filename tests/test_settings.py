"""Settings fail loudly on bad values (house style: a mistyped setting stops start-up)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ops.env import envbool, envint, envstr


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, **env)
    return subprocess.run(
        [sys.executable, "-c", "import ops.settings"], env=full, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("PROCESSOR_BATCH_SIZE", "lots", "PROCESSOR_BATCH_SIZE='lots' is not an integer"),
        ("PROCESSOR_BATCH_SIZE", "0", "PROCESSOR_BATCH_SIZE=0 must be at least 1"),
        ("DATABASE_URL", "nosuchdb://x", "DATABASE_URL is not a valid database URL"),
    ],
)
def test_a_bad_setting_stops_start_up_with_its_name(name, value, message, tmp_path):
    result = _import_settings(**{name: value, "CAMPUSCARD_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(CAMPUSCARD_PRODUCTION="1", CAMPUSCARD_VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", "import ops.settings"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_a_secret_can_come_from_a_file(tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-value\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
    assert envstr("SECRET_KEY") == "s3cr3t-value"


def test_typed_readers(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    monkeypatch.setenv("X_NUM", "42")
    assert envbool("X_FLAG", False) is True
    assert envint("X_NUM", 1) == 42
    assert envint("X_MISSING", 7) == 7


def test_production_settings_pass_check_deploy_with_no_warning(tmp_path):
    """Issue 6: the production settings pass ``campuscard check --deploy`` and any warning
    fails (``--fail-level WARNING``) — so CI fails the build on one. Secrets come only from
    the environment (or *_FILE), never from defaults: the production run is given its own."""
    import secrets

    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "AUDIT_HMAC_KEY", "DEBUG", "DATABASE_URL"}}
    key_file = tmp_path / "secret_key"
    key_file.write_text(secrets.token_urlsafe(64))
    env.update(
        CAMPUSCARD_PRODUCTION="1",
        CAMPUSCARD_VAR_DIR=str(tmp_path),
        SECRET_KEY_FILE=str(key_file),
        AUDIT_HMAC_KEY=secrets.token_hex(32),
        ALLOWED_HOSTS="card.example.edu.cn",
        CSRF_TRUSTED_ORIGINS="https://card.example.edu.cn",
    )

    def check_deploy() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ops.cli", "check", "--deploy", "--fail-level", "WARNING"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    result = check_deploy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout

    # and the check does bite: the same run with a development setting fails the build
    env["SESSION_COOKIE_SECURE"] = "0"
    weakened = check_deploy()
    assert weakened.returncode != 0 and "security.W012" in weakened.stderr
