"""``campuscard bench graduates``: the July run over N graduates with D on the deferred list."""

from __future__ import annotations

import random
import secrets
import time
from datetime import date, timedelta
from typing import Any

from django.core.management import call_command
from django.utils import timezone

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry.choices import HolderKind
from ops.registry.lifecycle import graduation
from ops.registry.models import Card, Cardholder, Department
from streams.cards import CardStatus, CardType


def run(*, students: int, deferred: int) -> dict[str, Any]:
    call_command("migrate", verbosity=0, interactive=False)
    dept, _ = Department.objects.get_or_create(code="CS", name="计算机工程系")
    nic = create_or_update_operator(username="bench-nic", password=secrets.token_urlsafe(12), role=Role.NIC)
    start = timezone.now() - timedelta(days=1400)
    Cardholder.objects.bulk_create(
        [
            Cardholder(
                kind=HolderKind.STUDENT,
                number=f"2022CS{i:06d}",
                name=f"学生{i}",
                department=dept,
                study_end=date(2026, 7, 1),
            )
            for i in range(students)
        ],
        batch_size=5000,
    )
    holders = list(Cardholder.objects.filter(number__startswith="2022CS").values_list("id", flat=True))
    Card.objects.bulk_create(
        [
            Card(
                uid=f"{0xB0000000 + i:08X}",
                holder_id=h,
                card_type=CardType.STUDENT,
                status=CardStatus.ACTIVE,
                valid_from=start,
            )
            for i, h in enumerate(holders)
        ],
        batch_size=5000,
    )
    rng = random.Random(3)
    deferred_list = {f"2022CS{i:06d}": date(2027, 7, 1) for i in rng.sample(range(students), deferred)}

    t0 = time.perf_counter()
    plan = graduation.plan_graduation(cutoff=date(2026, 7, 31), deferred=deferred_list)
    dry = plan.report()
    t_plan = time.perf_counter() - t0
    t1 = time.perf_counter()
    applied = graduation.run_graduation(plan=plan, operator=nic, basis="bench: 2026届毕业名单")
    t_apply = time.perf_counter() - t1
    audited = AuditRecord.objects.filter(action__startswith="holder.").count()
    return {
        "students": students,
        "deferred": deferred,
        "seconds": round(t_plan + t_apply, 3),
        "plan_seconds": round(t_plan, 3),
        "apply_seconds": round(t_apply, 3),
        "cancelled": Card.objects.filter(status=CardStatus.CANCELLED).count(),
        "audit_records": audited,
        "dry_run_matches_apply": dry == applied,
    }
