"""`bench/cdp_pipe.py`: the soak's Chromium, driven over its DevTools pipe, is attached to
the page only while a probe runs — between probes the page is alone, as in an operator's browser
(an attached DevTools client keeps every websocket frame the page receives and would be measured
instead of the page)."""

from __future__ import annotations

import pytest

from bench import memory_dump
from bench.cdp_pipe import CDPError, Chromium

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium(tmp_path):
    browser = Chromium(tmp_path / "profile")
    yield browser
    browser.close()
    assert browser.proc.returncode is not None  # no Chromium left behind


def _page_attached(chromium: Chromium) -> bool:
    targets = chromium.send("Target.getTargets")["targetInfos"]
    return next(t for t in targets if t["type"] == "page")["attached"]


def test_a_probe_attaches_only_while_it_runs(chromium):
    chromium.navigate("data:text/html,<ul><li>1</li><li>2</li></ul>")
    assert chromium.wait_for("document.querySelectorAll('li').length") == 2
    assert not _page_attached(chromium)
    with chromium.attached() as session:
        assert _page_attached(chromium)
        assert chromium.evaluate("1 + 1", session=session) == 2
    assert not _page_attached(chromium)


def test_page_errors_are_reported_not_swallowed(chromium):
    chromium.navigate("data:text/html,<p>x</p>")
    with pytest.raises(CDPError, match="page"):
        chromium.evaluate("nosuchname.value")


def test_renderers_are_found_in_proc_and_dumped_by_allocator(chromium):
    chromium.navigate("data:text/html,<p id=x>x</p>")
    chromium.wait_for("!!document.getElementById('x')")
    pids = chromium.renderer_pids()
    assert pids and chromium.proc.pid not in pids
    for pid in pids:
        assert b"--type=renderer" in open(f"/proc/{pid}/cmdline", "rb").read()
    dump = memory_dump.take(chromium, pids)
    assert dump["malloc"] > 0 and dump["v8"] > 0 and dump["blink_gc"] > 0
