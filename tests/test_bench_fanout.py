"""`campuscard bench fanout`: real websocket dashboards on /live/gates/ see the taps pushed to
them (the test fails if pushes stop reaching pages) — and the performance changes it led to
send exactly what the page sent before: the chart is the JSON ``go.Figure`` gives, rows and
alerts are the JSON of their components, and pages of one group share one subscription that
hands every page every push, in order."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
import pytest
import redis
from channels.layers import get_channel_layer
from dash._utils import to_json
from django.utils import translation

from dashboard import live
from dashboard.gate_board import GateBoard
from dashboard.pages import gates
from tests.conftest import bench_figures
from tests.private_servers import start_redis, stop

TZ = ZoneInfo("Asia/Shanghai")
KEYS = (
    "clients",
    "events_per_s",
    "offered_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "taps_seen_fraction",
    "processor_lag_s",
    "daphne_rss_before_mb",
    "daphne_rss_after_mb",
)


@pytest.mark.slow
def test_every_dashboard_sees_the_taps_pushed_to_it(tmp_path):
    """Four pages dealt over two daphne processes (issue 14, Build 5): the Channels layer
    reaches the pages of both."""
    args = ("--clients", "4", "--web", "2", "--rate", "50", "--seconds", "4")
    figures = bench_figures(tmp_path, "fanout", *args, timeout=150)
    for key in KEYS:
        assert isinstance(figures[key], int | float), key
    assert figures["clients"] == 4 and figures["web_processes"] == 2 and figures["page_errors"] == 0
    assert figures["taps_offered"] > 100 and figures["taps_committed"] == figures["taps_offered"]
    assert figures["clients_seeing_taps"] == 4  # every page, on both processes, got pushes …
    assert figures["min_client_seen_fraction"] > 0.9  # … and (at 50/s) nearly every tap
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]


@pytest.mark.slow
def test_the_desks_fan_out_over_two_channel_layer_redis_hosts(tmp_path):
    """Issue 14, Build 4: the Channels layer on several Redis hosts (CHANNEL_REDIS_URLS):
    channels_redis shards channels and groups over them, and every page on both daphne
    processes still sees the taps. Two private redis-servers, started here."""
    servers = []
    try:
        for n in range(2):
            proc, port = start_redis(tmp_path / f"r{n}", "--appendonly", "no")
            servers.append((proc, redis.Redis(port=port)))
        urls = ",".join(f"redis://127.0.0.1:{c.connection_pool.connection_kwargs['port']}/0" for _p, c in servers)
        args = ("--clients", "4", "--web", "2", "--rate", "50", "--seconds", "4")
        figures = bench_figures(tmp_path, "fanout", *args, timeout=150, env={"CHANNEL_REDIS_URLS": urls})
        assert figures["page_errors"] == 0 and figures["clients_seeing_taps"] == 4
        assert figures["min_client_seen_fraction"] > 0.9
        # both hosts carry the layer: the groups are spread over them by their (fixed) names,
        # each page's channel by its (random) name — so messages may all land on one of them
        stats = [client.info("commandstats") for _proc, client in servers]
        for calls in stats:
            assert calls.get("cmdstat_zadd", {}).get("calls", 0) > 0, calls.keys()  # group members
        sends = sum(v["calls"] for calls in stats for k, v in calls.items() if k.startswith("cmdstat_eval"))
        assert sends > 0  # the messages went through these hosts, not REDIS_URL
    finally:
        for proc, client in servers:
            client.close()
            stop(proc)


def _board() -> tuple[GateBoard, dict[str, str]]:
    now = time.time()
    codes = [f"G-E-{i:02d}" for i in range(1, 5)] + ["V-E-IN"]
    rows = [
        {
            "id": str(uuid.uuid4()),
            "ts": now - i,
            "device": codes[i % 5],
            "device_name": "东门人行1号闸",
            "kind": "pedestrian_gate",
            "building": None,
            "holder": "张*3" if i % 7 else "",
            "holder_kind": "student",
            "card": "04****AB",
            "direction": ("in", "out", "none")[i % 3],
            "decision": "deny" if i % 4 else "allow",
            "reason": ("ok", "blacklisted", "lost", "expired")[i % 4],
            "flags": "",
        }
        for i in range(50)
    ]
    counts = {c: {int(now // 60) - m: (m * 7 + n) % 90 + 1 for m in range(0, 30, 1 + n)} for n, c in enumerate(codes)}
    board = GateBoard(max_rows=50, minutes=30, tz=TZ)
    board.load(
        {
            "watermark": 1,
            "rows": rows,
            "counts": counts,
            "inout": {},
            "totals": {"allow": 1, "deny": 2, "reasons": {}, "since": 0},
        },
        seq=1,
    )
    return board, {c: f"{c} 闸" for c in codes[:3]}


def _plotly_figure(board: GateBoard, names: dict[str, str]) -> go.Figure:
    """How the gate chart was built before ``bench fanout`` (plotly validates every call)."""
    fig = go.Figure()
    for code in sorted(board.counts):
        per = board.counts[code]
        minutes = sorted(per)
        fig.add_bar(
            name=names.get(code, code),
            y=[per[m] for m in minutes],
            x=[datetime.fromtimestamp(m * 60, TZ) for m in minutes],
        )
    fig.update_layout(
        barmode="stack",
        height=520,
        margin={"l": 40, "r": 10, "t": 10, "b": 40},
        legend={"orientation": "h", "y": -0.2},
        uirevision="keep",
        xaxis={"tickformat": "%H:%M"},
        yaxis={"title": translation.gettext("次/分钟")},
    )
    return fig


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_the_chart_and_rows_are_sent_exactly_as_the_components_would_be(lang):
    board, names = _board()
    with translation.override(lang):
        assert to_json(gates._figure(board, names, TZ)) == to_json(_plotly_figure(board, names))
        for row in board.rows:
            shared = gates._shared(("row", lang, TZ.key, *row.items()), functools.partial(gates._row, row, TZ))
            assert to_json(shared) == to_json(gates._row(row, TZ))
            again = gates._shared(("row", lang, TZ.key, *row.items()), lambda: pytest.fail("rebuilt"))
            assert again is shared


def test_pages_of_one_group_share_one_subscription_and_get_every_push_in_order():
    group = f"test.shared.{uuid.uuid4().hex}"

    async def scenario() -> None:
        (sub_a, a), (sub_b, b) = [await live._Subscription.join(group) for _ in range(2)]
        assert sub_a is sub_b
        layer = get_channel_layer()
        assert layer is not None
        for seq in range(1, 21):
            await layer.group_send(group, {"type": "live.batch", "seq": seq})
        for inbox in (a, b):
            got = [(await asyncio.wait_for(inbox.get(), 10))["seq"] for _ in range(20)]
            assert got == list(range(1, 21))
        sub_a.leave(a)
        assert not sub_a.task.done()  # b is still watching
        sub_b.leave(b)
        with pytest.raises(asyncio.CancelledError):
            await sub_b.task
        sub_c, c = await live._Subscription.join(group)  # a page opened later: a fresh one
        assert sub_c is not sub_a
        await layer.group_send(group, {"type": "live.batch", "seq": 21})
        assert (await asyncio.wait_for(c.get(), 10))["seq"] == 21
        sub_c.leave(c)

    asyncio.run(scenario())
