"""A device's name is text in the desks' charts, as in their tables (issue 20 item 12): Plotly
renders a subset of HTML in legends and hover labels, so a gate named ``<a href="https://…">``
was a live link in the security desk's chart legend. Both charts in ``dashboard/`` — the live
per-minute chart and the replay chart — escape it (``dashboard.chart_text``). In a real browser
against real daphne, a real processor, PostgreSQL and Redis, and at the figure itself."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from dashboard.chart_text import chart_text
from dashboard.gate_board import GateBoard
from dashboard.pages import gates
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry.models import Device
from streams.cards import DeviceKind
from tests.browser import chromium, log_in
from tests.factories import make_device, publish, tap

PASSWORD = "chart-text-pass-5"
EVIL = '<a href="https://evil.example/">东门<b>闸</b></a>'


def test_chart_text_escapes_markup_and_leaves_plain_names_alone():
    assert chart_text(EVIL) == '&lt;a href="https://evil.example/"&gt;东门&lt;b&gt;闸&lt;/b&gt;&lt;/a&gt;'
    assert chart_text("东门人行1号闸 & 2") == "东门人行1号闸 &amp; 2"
    assert chart_text("G-E-01") == "G-E-01"


def test_the_live_gate_chart_names_each_trace_as_text():
    board = GateBoard(max_rows=10, minutes=30)
    board.counts = {"G-E-01": {29_000_000: 3}}
    figure = gates._figure(board, {"G-E-01": EVIL}, ZoneInfo("Asia/Shanghai"))
    (trace,) = figure["data"]
    assert "<" not in trace["name"] and trace["name"] == chart_text(EVIL)


@pytest.mark.browser
@pytest.mark.pipeline
@pytest.mark.slow
def test_a_device_named_as_a_link_is_no_link_in_the_desk_charts(campus, redis_client, stack):
    Device.objects.filter(code="G-E-01").update(name=EVIL)
    make_device("G-E-02", "东门人行2号闸", DeviceKind.PEDESTRIAN_GATE, "东门", campus.dept)  # a legend needs two
    create_or_update_operator(username="guard-c", password=PASSWORD, role=Role.SECURITY)
    card = campus.cards[1]
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, stack, "guard-c", PASSWORD, "/live/gates/")
        page.wait_for_selector("#gates-status.live", timeout=20_000)
        publish(redis_client, [tap("G-E-02", campus.cards[2].uid, seq=1), tap("G-E-01", card.uid, seq=1)])
        page.wait_for_function("document.querySelectorAll('tr.tap-row').length === 2", timeout=10_000)
        assert EVIL in page.locator("tr.tap-row").first.inner_text()  # the table: text, as ever

        live = page.locator(f"#{gates.CHART}")
        live.locator(".legend .traces").first.wait_for(timeout=15_000)
        assert EVIL in (live.locator(".legend").text_content() or "")  # shown as written ...
        assert live.locator("a").count() == 0  # ... and no link anywhere in the chart
        assert live.locator(".legend b").count() == 0 and live.locator(".legend tspan[style*=bold]").count() == 0

        # the replay chart over the last hour (to a minute from now) holds the same taps
        until = datetime.now(ZoneInfo(settings.TIME_ZONE)) + timedelta(minutes=2)
        page.fill("#replay-to", until.strftime("%Y-%m-%dT%H:%M"))
        page.click("#replay-load")
        replay = page.locator("#replay-chart")
        replay.locator(".legend .traces").first.wait_for(timeout=15_000)
        assert EVIL in (replay.locator(".legend").text_content() or "")
        assert replay.locator("a").count() == 0
        assert page.locator("a[href^='https://evil.example']").count() == 0
