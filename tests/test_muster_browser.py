"""Issue 17's acceptance in a real browser against real daphne, processor, PostgreSQL and Redis:
the security office starts a muster for a building with five people inside (their taps in the
record), the board counts them inside and none safe; taps at the assembly-point reader go
through the real pipeline and the board counts them safe as they arrive, and lists by name the
ones still unaccounted; ending the muster takes it off the open board, live."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.muster.models import Muster, MusterPoint
from ops.registry.models import AccessEvent
from streams.cards import DeviceKind
from streams.reasons import Decision, Direction, Reason
from tests import screenshots
from tests.browser import chromium, log_in, outside_the_browser_loop
from tests.factories import make_device, publish, tap

pytestmark = [pytest.mark.browser, pytest.mark.pipeline, pytest.mark.slow]
PASSWORD = "muster-desk-pass-9"
SCREENSHOT = screenshots.path("muster-desk.png")
POINT = "MP-01"


def _inside(campus, n: int) -> list:
    """``n`` residents whose latest passage entered D1, and one who went in and out again."""
    hour_ago = timezone.now() - timedelta(hours=1)
    for i, card in enumerate(campus.cards[: n + 1]):
        for direction, at in [(Direction.IN, hour_ago)] + (
            [(Direction.OUT, hour_ago + timedelta(minutes=5))] if i == n else []
        ):
            AccessEvent.objects.create(
                event_id=uuid.uuid4(),
                device=campus.dorm_door,
                card=card,
                card_uid=card.uid,
                holder_id=card.holder_id,
                occurred_at=at,
                direction=direction,
                decision=Decision.ALLOW,
                reason=Reason.OK,
            )
    return campus.cards[:n]


def _at_point(uid: str, seq: int):
    event = tap(POINT, uid, seq=seq, when=datetime.now(UTC))
    return event.model_copy(update={"direction": Direction.NONE})


def _text(page, selector: str) -> str:
    return page.inner_text(selector).strip()


def test_the_muster_board_counts_people_inside_marks_them_safe_as_they_tap_and_lists_the_unaccounted(
    campus, redis_client, stack
):
    point = make_device(POINT, "东操场集合点读卡器", DeviceKind.DESK_READER, "东操场", campus.dept)
    MusterPoint.objects.create(device=point, place="东操场集合点")
    inside = _inside(campus, 5)
    guard = create_or_update_operator(username="guard-m", password=PASSWORD, role=Role.SECURITY)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        log_in(page, stack, "guard-m", PASSWORD, "/muster/")
        page.select_option("#start-building", "D1")
        page.fill("#start-reason", "3楼烟感报警")
        page.click("#start-submit")
        page.wait_for_url(f"{stack}/live/muster/")
        page.wait_for_selector("#muster-status.live", timeout=20_000)
        page.wait_for_selector("#muster-D1", timeout=10_000)
        assert (_text(page, "#muster-D1-inside"), _text(page, "#muster-D1-safe")) == ("5", "0")
        assert _text(page, "#muster-D1-unaccounted") == "5"
        missing = _text(page, "#muster-D1-unaccounted-list")
        assert all(c.holder.name in missing for c in inside)  # in full: an emergency
        assert campus.cards[5].holder.name not in missing  # went out again: not inside

        # three of them reach the assembly point and tap; one taps twice
        safe, rest = inside[:3], inside[3:]
        publish(redis_client, [_at_point(c.uid, i + 1) for i, c in enumerate(safe[:2])])
        page.wait_for_function("document.querySelector('#muster-D1-safe').innerText.trim() === '2'", timeout=10_000)
        publish(redis_client, [_at_point(safe[2].uid, 3), _at_point(safe[0].uid, 4)])
        page.wait_for_function("document.querySelector('#muster-D1-safe').innerText.trim() === '3'", timeout=10_000)
        assert _text(page, "#muster-D1-unaccounted") == "2"
        missing = _text(page, "#muster-D1-unaccounted-list")
        assert all(c.holder.name in missing for c in rest)
        assert not any(c.holder.name in missing for c in safe)
        arrived = _text(page, "#muster-D1-safe-list")
        assert all(c.holder.name in arrived for c in safe) and "东操场集合点" in arrived
        page.screenshot(path=SCREENSHOT)

        def viewed() -> list[str]:
            return list(
                AuditRecord.objects.filter(action="muster.view", actor_id=guard.pk).values_list("object_id", flat=True)
            )

        muster_id = outside_the_browser_loop(lambda: Muster.objects.get().pk)
        assert outside_the_browser_loop(viewed) == [str(muster_id)]  # the names were shown: on record

        # the muster ends on its own page; the board still open in the first tab lets it go
        other = context.new_page()  # the same session
        other.goto(f"{stack}/muster/{muster_id}/")
        assert other.inner_text("#report-safe").startswith("3")
        other.fill("#end-note", "已全部撤离")
        other.click("#end-submit")
        other.wait_for_selector("#muster-state:has-text('已结束')")
        page.wait_for_selector("#muster-none", timeout=10_000)
        assert page.locator("#muster-D1").count() == 0
