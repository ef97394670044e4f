"""Settings fail loudly on bad values (house style: a mistyped setting stops start-up)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ops.env import envbool, envint, envstr


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", "import ops.settings"], env=full,
                          capture_output=True, text=True, timeout=60)


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
    result = subprocess.run([sys.executable, "-c", "import ops.settings"], env=env,
                            capture_output=True, text=True, timeout=60)
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
