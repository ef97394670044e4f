"""The reports page for leadership (issue 18, Build 4): ``/reports/`` with a period picker, a
Plotly chart and a table per section, and ``/reports/xlsx`` — the same report as one XLSX.
Both render :func:`selectors.report` of the same period. The leader and NIC only (R-ROLE-2;
R-SEC-3: the role is granted by NIC). Only counts and sums: no person is named (R-SEC-2). Each
export is audited (R-SEC-1)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import plotly
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from dashboard.chart_text import chart_text
from ops.accounts.permissions import role_of
from ops.accounts.roles import REPORT_VIEWERS
from ops.audit.services import record
from ops.reports import periods, selectors, xlsx

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _allowed(request: HttpRequest) -> None:
    if role_of(request.user) not in REPORT_VIEWERS:
        raise PermissionDenied(_("只有分管领导和网信中心可以查看统计报表。"))


def _period(request: HttpRequest) -> tuple[periods.Period | None, str, str, str]:
    """The period asked for (default: this month), the picker's values, and an error."""
    kind = request.GET.get("period", periods.Kind.MONTH)
    text = request.GET.get("date") or timezone.localdate().isoformat()
    if kind not in set(periods.Kind):
        return None, kind, text, _("未知的报表类型：请选择日报、周报、月报或学期报。")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None, kind, text, _("日期格式不正确，应为 YYYY-MM-DD（例如 2026-09-01）。")
    return periods.period_of(kind, day), kind, text, ""


def _figure(section: selectors.Section) -> dict[str, Any]:
    """A Plotly figure of the section's chart; every text of ours escaped (``chart_text``)."""
    chart = section.chart
    traces = [
        {
            "type": chart["type"],
            "name": chart_text(t["name"]),
            "x": [chart_text(x) for x in t["x"]],
            "y": t["y"],
        }
        for t in chart["traces"]
    ]
    return {
        "data": traces,
        "layout": {
            "title": {"text": chart_text(section.title)},
            "barmode": chart.get("barmode", "group"),
            "xaxis": {"title": {"text": chart_text(chart["x_title"])}, "type": "category"},
            "yaxis": {"title": {"text": chart_text(chart["y_title"])}, "rangemode": "tozero"},
            "height": 360,
            "margin": {"l": 60, "r": 20, "t": 50, "b": 90},
            "legend": {"orientation": "h"},
        },
    }


@login_required
@require_GET
def page(request: HttpRequest) -> HttpResponse:
    _allowed(request)
    period, kind, text, error = _period(request)
    context: dict[str, Any] = {
        "kinds": [(k.value, str(periods.KIND_LABELS[k])) for k in periods.Kind],
        "kind": kind,
        "date": text,
        "error": error,
    }
    if period is not None:
        report = selectors.report(period)
        context["report"] = report
        context["sections"] = [(s, _figure(s), f"chart-{s.key}", f"figure-{s.key}") for s in report.sections]
    response = render(request, "reports/page.html", context, status=400 if error else 200)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def download(request: HttpRequest) -> HttpResponse:
    _allowed(request)
    period, _kind, _text, error = _period(request)
    if period is None:
        return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
    report = selectors.report(period)
    content = xlsx.to_xlsx(report)
    record(actor=request.user, action="report.export", object_type="report", object_id=period.slug)
    response = HttpResponse(content, content_type=xlsx.XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{xlsx.filename(report)}"'
    response["Cache-Control"] = "private, no-store"
    return response


@lru_cache(maxsize=1)
def _plotly_js() -> bytes:
    return PLOTLY_JS.read_bytes()


@login_required
@require_GET
def plotly_js(request: HttpRequest) -> HttpResponse:
    """Plotly's own bundle, from the installed ``plotly`` package (no CDN: a campus network
    may have no way out)."""
    _allowed(request)
    response = HttpResponse(_plotly_js(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "private, max-age=86400"
    return response
