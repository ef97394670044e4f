"""What the NIC desk shows of the scheduled work (issue 16, Build 4): one row per job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ops.pipeline.models import ScheduledRun
from ops.pipeline.scheduled import Daily, jobs, missed


def scheduled_runs(*, now: datetime) -> list[dict[str, Any]]:
    """Every scheduled job — also one turned off — with its last run, outcome, duration and
    next due time; ``missed``: no success for twice its interval. ``label`` is a lazy
    translation, rendered in the viewer's language."""
    rows = {r.job: r for r in ScheduledRun.objects.all()}
    out = []
    for job in jobs():
        schedule, row = job.schedule(), rows.get(job.name)
        out.append(
            {
                "job": job.name,
                "label": job.label,
                "at": f"{schedule.at:%H:%M}" if schedule else "",
                "started": row.started_at.timestamp() if row and row.started_at else None,
                "outcome": row.outcome if row else "",
                "error": row.error if row else "",
                "duration_s": row.duration_s if row else None,
                "last_ok": row.last_ok_at.timestamp() if row and row.last_ok_at else None,
                "next_due": _next_due(schedule, row, now),
                "missed": bool(schedule and row and missed(row, schedule, now)),
            }
        )
    return out


def _next_due(schedule: Daily | None, row: ScheduledRun | None, now: datetime) -> float | None:
    """The slot still waiting for a supervisor if there is one, else the next."""
    if schedule is None:
        return None
    pending = schedule.last_due(now)
    if row is not None and row.slot is not None and row.slot < pending:
        return pending.timestamp()
    return schedule.next_due(now).timestamp()
