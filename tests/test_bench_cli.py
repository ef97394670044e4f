"""`campuscard bench pipeline --json` runs end to end on a scratch system and prints its figures
as one JSON object on the last line (CI and operators track them)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import bench_figures

pytestmark = [pytest.mark.slow, pytest.mark.pipeline]


def test_bench_pipeline_prints_its_figures_as_json(tmp_path):
    figures = bench_figures(
        tmp_path,
        "pipeline",
        "--rate",
        "300",
        "--seconds",
        "2",
        "--latency-seconds",
        "2",
        "--backlog",
        "1000",
        timeout=240,
    )
    for key in ("events_per_s", "lag_max_s", "fanout_p50_ms", "fanout_p99_ms"):
        assert isinstance(figures[key], int | float)
    # the processors' CPU, draining and at the offered rate
    assert figures["processor_cpu_ms_per_1000"] > 0 and figures["sustained_cpu_ms_per_1000"] > 0
    assert figures["events"] > 400 and figures["delivered"] == figures["events"], figures
    assert figures["backlog_drained"] == figures["backlog_events"] > 900
    assert figures["latency_delivered"] == figures["latency_events"] >= 350
    assert 0 < figures["fanout_p50_ms"] <= figures["fanout_p99_ms"]
    # the ceiling, measured in the same run (issue 14): the bare pipeline on the same parts
    assert figures["bare_events_per_s"] > 0
    assert figures["ratio"] == pytest.approx(figures["capacity_events_per_s"] / figures["bare_events_per_s"], abs=0.002)


@pytest.mark.browser
def test_bench_soak_samples_a_real_page_and_says_where_its_memory_is(tmp_path):
    """A short `bench soak`: one real Chromium gate page under taps; the page keeps up, its
    feed is bounded, and the renderer's memory is broken down by allocator at both dumps."""
    figures = bench_figures(tmp_path, "soak", "--rate", "50", "--minutes", "1", "--sample-s", "20", timeout=280)
    assert figures["samples"] >= 3 and figures["probes_timed_out"] == 0
    assert figures["page_live_throughout"] and figures["page_errors"] == 0
    assert figures["taps_committed"] == figures["taps_offered"] > 1000
    assert 0 < figures["feed_rows_last"] <= 50 and figures["chart_points_last"] > 0
    assert figures["heap_total_mb_last"] >= figures["heap_mb_last"] > 0
    assert figures["renderer_rss_mb_last"] > figures["renderer_private_mb_last"] > 0
    for dump in (figures["allocators_first_mb"], figures["allocators_last_mb"]):
        assert dump["malloc"] > 0 and dump["v8"] > 0 and "partition_alloc" in dump
    assert figures["allocators_to_s"] > figures["allocators_from_s"]


def test_bench_memory_samples_every_server_process(tmp_path):
    """A short `bench memory` (issue 14, Build 6; the 30-minute run is in docs/benchmarks.md):
    daphne, the processor and the relay sampled while taps flow and cards change."""
    args = ("--rate", "200", "--minutes", "0.5", "--sample-s", "5", "--pages", "2")
    figures = bench_figures(tmp_path, "memory", *args, timeout=240)
    assert figures["samples"] >= 5 and figures["processes_died"] == []
    assert figures["taps_committed"] == figures["taps_offered"] > 3000
    assert figures["card_actions"] >= 3
    for name in ("daphne", "processor", "relay"):
        assert figures[f"{name}_rss_mb_last"] > 20
        assert isinstance(figures[f"{name}_rss_slope_mb_per_10min"], float)


def test_a_bench_on_the_embedded_defaults_leaves_no_redis_running(tmp_path):
    """Loading the settings without REDIS_URL starts the embedded Redis for the bench's own
    process; the bench itself runs in a scratch system. Both servers are stopped at the end."""
    import os
    import subprocess

    from streams import embedded_redis
    from tests.conftest import campuscard_cmd

    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["CAMPUSCARD_VAR_DIR"] = str(tmp_path)
    result = subprocess.run(
        campuscard_cmd("bench", "decide", "--cards", "2000", "--taps", "4000", "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not embedded_redis.is_running(tmp_path / "redis")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["p99_ms"] > 0 and figures["outbox_appends_per_s"] > 0  # printed, not judged here
