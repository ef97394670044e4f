"""The rules of a muster (紧急清点, issue 17).

- The security office or NIC starts a muster for one building, with a reason; one at a time per
  building (a database rule too). The people to account for are those inside at that moment by
  their latest passage (``selectors.inside_now``), fixed for the muster's life: someone who goes
  in afterwards is not added, someone who leaves through a door without reaching an assembly
  point stays unaccounted.
- A person is safe once they tap at a muster point (an assembly-point desk reader) from
  ``counted_from`` on: ``MUSTER_EARLY_TAP_S`` (5 minutes) before the start, since people reach the
  assembly point before anyone starts the roll call. Only allowed taps count. Nothing is written
  per tap: the board and the report read the taps, and the muster's end writes the result down.
- The security office or NIC ends it, with an optional note.
- Names: full while the muster runs, to the roles that may see the building's musters (the
  security office, NIC, the building's dorm managers) — every board that shows them and every
  export is audited; masked once it has ended (docs/decisions.md "Muster names").
- Every step is audited with the reason as its basis, and announced to the live boards after
  the commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.accounts.permissions import can_lead_musters, muster_scope
from ops.audit.services import Entry, record, record_many
from ops.muster import export, selectors
from ops.muster.choices import CHANGED, LIVE_GROUP, OBJECT_TYPE, REASON_MAX, AuditAction
from ops.muster.models import Muster, MusterPerson
from ops.push import push
from ops.registry.models import Building

REASON_MIN = 2


class MusterError(ValidationError):
    """A step the rules refuse (bad input, wrong state); nothing has been changed."""

    def __str__(self) -> str:
        return " ".join(self.messages)


class MusterForbidden(PermissionDenied):
    """The operator's role may not take this step, or may not see this muster."""


def can_see(user: Any, muster: Muster) -> bool:
    """The security office and NIC see every muster; a dorm manager those of their buildings."""
    codes = muster_scope(user)
    return codes is None or muster.building.code in codes


def announce(change: str, muster_id: int | None = None) -> None:
    """Tell the live boards, after the commit, that a muster started or ended (or the muster
    points changed): they reload their snapshot. No rows, watermark 0: any other board on the
    group skips it (``dashboard.sequence``), a muster board reloads."""
    push(LIVE_GROUP, {"rows": [], "watermark": 0, CHANGED: change, "muster": muster_id})


def _audit(by: Any, action: AuditAction, muster: Muster, **data: Any) -> None:
    record(
        actor=by,
        action=action,
        object_type=OBJECT_TYPE,
        object_id=muster.pk,
        basis=muster.reason,
        data={"building": muster.building.code, **data},
    )


@transaction.atomic
def start_muster(*, building: Building | str, reason: str, by: Any, at: datetime | None = None) -> Muster:
    """Start a roll call of ``building``: everyone inside by their latest passage is to be
    accounted for. Refused (``MusterError``) without a reason, for an unknown building, or when
    the building has one running already."""
    if not can_lead_musters(by):
        raise MusterForbidden(_("只有保卫处和网信中心可以发起紧急清点"))
    reason = (reason or "").strip()
    if len(reason) < REASON_MIN:
        raise MusterError(_("请填写发起清点的原因"))
    if len(reason) > REASON_MAX:
        raise MusterError(_("清点原因过长（最多%(n)s字）") % {"n": REASON_MAX})
    code = building.code if isinstance(building, Building) else str(building)
    # the building's row locked: two starts for one building are serialised (and the partial
    # unique index refuses the second anyway)
    place = Building.objects.select_for_update().filter(code=code).first()
    if place is None:
        raise MusterError(_("没有这栋楼宇"))
    if Muster.objects.filter(building=place, ended_at__isnull=True).exists():
        raise MusterError(_("%(building)s 已有进行中的清点") % {"building": place.name})
    now = at or timezone.now()
    inside = selectors.inside_now(place, at=now)
    muster = Muster.objects.create(
        building=place,
        reason=reason,
        started_by=by,
        started_at=now,
        counted_from=now - timedelta(seconds=settings.MUSTER_EARLY_TAP_S),
    )
    MusterPerson.objects.bulk_create(
        MusterPerson(muster=muster, holder_id=p.holder_id, door_id=p.door_id, entered_at=p.entered_at) for p in inside
    )
    _audit(by, AuditAction.START, muster, inside=len(inside))
    announce("started", muster.pk)
    return muster


@transaction.atomic
def end_muster(muster_id: int, *, by: Any, note: str = "") -> Muster:
    """End a running muster and write down who was safe, when and where (the record from then
    on: later taps and muster-point changes do not rewrite it)."""
    if not can_lead_musters(by):
        raise MusterForbidden(_("只有保卫处和网信中心可以结束紧急清点"))
    muster = Muster.objects.select_for_update().select_related("building").filter(pk=muster_id).first()
    if muster is None:
        raise MusterError(_("没有这次清点"))
    if not muster.active:
        raise MusterError(_("这次清点已经结束"))
    now = timezone.now()
    marks = selectors.safe_marks(muster)  # the muster still running: up to now
    persons = list(muster.persons.all())
    for p in persons:
        p.safe_at, p.safe_point_id = marks.get(p.holder_id, (None, None))
    MusterPerson.objects.bulk_update(persons, ["safe_at", "safe_point"])
    muster.ended_at, muster.ended_by = max(now, muster.started_at), by
    muster.end_note = (note or "").strip()[:REASON_MAX]
    muster.save(update_fields=["ended_at", "ended_by", "end_note"])
    safe = sum(1 for p in persons if p.safe_at is not None)
    _audit(by, AuditAction.END, muster, inside=len(persons), safe=safe, unaccounted=len(persons) - safe)
    announce("ended", muster.pk)
    return muster


def record_views(*, by: Any, muster_ids: list[int], via: str) -> int:
    """One audit record per muster whose names a board has just shown to ``by``."""
    musters = Muster.objects.select_related("building").filter(pk__in=muster_ids)
    return record_many(
        actor=by,
        basis="",
        entries=[
            Entry(AuditAction.VIEW, OBJECT_TYPE, str(m.pk), {"building": m.building.code, "via": via}) for m in musters
        ],
    )


def visible_muster(user: Any, muster_id: int) -> Muster:
    """The muster, if ``user`` may see it (``MusterForbidden`` otherwise, the same for one that
    does not exist: no hint that a muster outside the viewer's scope exists)."""
    muster = selectors.visible(muster_scope(user)).filter(pk=muster_id).first()
    if muster is None:
        raise MusterForbidden(_("没有这次清点，或您无权查看"))
    return muster


@transaction.atomic
def export_muster(muster_id: int, *, by: Any) -> tuple[str, bytes]:
    """The muster as an XLSX file (name, content), audited: names in full while it runs, masked
    once it has ended."""
    muster = visible_muster(by, muster_id)
    rep = selectors.report(muster, with_names=muster.active)
    now = timezone.now()
    _audit(by, AuditAction.EXPORT, muster, names="full" if rep.with_names else "masked", persons=rep.inside)
    content = export.to_xlsx(rep, exported_by=by.get_username(), at=now)
    return f"muster-{muster.building.code}-{timezone.localtime(muster.started_at):%Y%m%d-%H%M}.xlsx", content


def muster_points_changed() -> None:
    """Muster points were added, changed or removed (the admin): the boards reload them."""
    announce("points")
