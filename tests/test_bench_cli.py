"""`campuscard bench pipeline --json` runs end to end on a scratch system and prints its figures
as one JSON object on the last line (CI and operators track them)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import campuscard_cmd

pytestmark = [pytest.mark.slow, pytest.mark.pipeline]


def test_bench_pipeline_prints_its_figures_as_json(tmp_path):
    import os

    env = dict(os.environ, CAMPUSCARD_VAR_DIR=str(tmp_path))
    result = subprocess.run(
        campuscard_cmd("bench", "pipeline", "--rate", "300", "--seconds", "2",
                       "--latency-seconds", "2", "--backlog", "1000", "--json"),
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("events_per_s", "lag_max_s", "fanout_p50_ms", "fanout_p99_ms"):
        assert isinstance(figures[key], int | float)
    assert figures["events"] > 400 and figures["delivered"] == figures["events"]
    assert figures["backlog_drained"] == figures["backlog_events"] > 900
    assert figures["latency_delivered"] == figures["latency_events"] >= 350
    assert 0 < figures["fanout_p50_ms"] <= figures["fanout_p99_ms"]
