"""The reports mailed to leadership (issue 18, Build 4): the supervisor's job ``reports-mail``
runs each morning at ``REPORTS_MAIL_AT`` (``ops.pipeline.scheduled``) and mails every period —
day, ISO week, month, semester — that ended yesterday, as one XLSX (``xlsx.to_xlsx`` of
``selectors.report``: the figures the page shows) to each active operator holding the leader
role who has an e-mail address: one message per period per leader.

Each period is mailed once (``MailedReport``, claimed in the same transaction as the sending: a
failed send leaves it unclaimed, to be tried again at the next run). A supervisor that was down
catches up on the periods that ended in the last ``CATCHUP_DAYS`` days since the last mailing.
Every mailing is audited (``report.mailed``, by the system).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ops.accounts.roles import Role
from ops.audit.services import record
from ops.pipeline.scheduled import Job, daily
from ops.reports import periods, selectors, xlsx
from ops.reports.models import MailedReport

CATCHUP_DAYS = 7


def leaders() -> list[Any]:
    """The active operators holding the leader role, with an e-mail address."""
    return list(
        get_user_model()
        .objects.filter(is_active=True, operator__role=Role.LEADER)
        .exclude(email="")
        .order_by("username")
    )


def mail(period: periods.Period) -> list[str]:
    """Mail ``period``'s report to every leader, once; the addresses it went to ([] if it had
    already been mailed)."""
    with transaction.atomic():
        claimed, created = MailedReport.objects.select_for_update().get_or_create(
            kind=period.kind, start=period.start, end=period.end
        )
        if not created:
            return []
        to = leaders()
        with translation.override(settings.LANGUAGE_CODE):
            report = selectors.report(period)
            content = xlsx.to_xlsx(report)
            subject = _("校园一卡通统计报表：%(period)s") % {"period": period.label}
            body = _("附件为%(period)s的统计报表（Excel）。在线查看：/reports/?period=%(kind)s&date=%(date)s") % {
                "period": period.label,
                "kind": period.kind,
                "date": period.start.isoformat(),
            }
        messages = []
        for user in to:
            message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
            message.attach(xlsx.filename(report), content, xlsx.XLSX_TYPE)
            messages.append(message)
        if messages:
            get_connection(fail_silently=False).send_messages(messages)
        claimed.recipients = [u.username for u in to]
        claimed.save(update_fields=["recipients"])
        record(
            actor=None,
            action="report.mailed",
            object_type="report",
            object_id=period.slug,
            data={"recipients": claimed.recipients},
        )
    return [u.email for u in to]


def due_periods(yesterday: date) -> list[periods.Period]:
    """The periods that ended yesterday, and — after a mailing was missed — those that ended
    since the last one, within ``CATCHUP_DAYS``."""
    last = MailedReport.objects.filter(kind=periods.Kind.DAY).order_by("-end").values_list("end", flat=True).first()
    first = yesterday if last is None else max(last + timedelta(days=1), yesterday - timedelta(days=CATCHUP_DAYS - 1))
    found: list[periods.Period] = []
    day = min(first, yesterday)
    while day <= yesterday:
        found.extend(periods.ended_on(day))
        day += timedelta(days=1)
    return found


def mail_due(now: datetime) -> dict[str, Any]:
    yesterday = timezone.localtime(now).date() - timedelta(days=1)
    sent: dict[str, int] = {}
    for period in due_periods(yesterday):
        addresses = mail(period)
        if addresses:
            sent[period.slug] = len(addresses)
    return {"mailed": sent}


JOB = Job(
    "reports-mail",
    gettext_lazy("统计报表邮件（日、周、月、学期）"),
    lambda: daily(settings.REPORTS_MAIL_AT),
    mail_due,
)
