"""A muster as an XLSX workbook: a summary sheet and one row per person (issue 17). Text that a
spreadsheet would run as a formula is neutralised (``ops.spreadsheet``, the one helper every
export uses): a reason typed by an operator, or a name from an imported list, must not become
a formula on the desk of whoever opens the file."""

from __future__ import annotations

import io
from datetime import datetime

from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from ops.muster.selectors import Report
from ops.spreadsheet import append_row as _append


def to_xlsx(rep: Report, *, exported_by: str, at: datetime) -> bytes:
    muster = rep.muster
    book = Workbook()
    summary = book.active
    assert isinstance(summary, Worksheet)  # a new workbook opens on its one worksheet
    summary.title = _("清点概况")
    for label, value in [
        (_("楼宇"), f"{muster.building.code} {muster.building.name}"),
        (_("清点原因"), muster.reason),
        (_("发起人"), muster.started_by.get_username()),
        (_("发起时间"), muster.started_at),
        (_("集合点刷卡计入起点"), muster.counted_from),
        (_("结束人"), muster.ended_by.get_username() if muster.ended_by else ""),
        (_("结束时间"), muster.ended_at or ""),
        (_("结束说明"), muster.end_note),
        (_("楼内人数"), rep.inside),
        (_("已确认安全"), rep.safe),
        (_("未确认"), rep.unaccounted),
        (_("姓名"), _("完整（清点进行中）") if rep.with_names else _("已脱敏（清点已结束）")),
        (_("导出人"), exported_by),
        (_("导出时间"), at),
    ]:
        _append(summary, [label, value])
    people = book.create_sheet(_("人员"))
    _append(
        people,
        [_("状态"), _("学工号"), _("姓名"), _("部门/学系"), _("进楼门"), _("进楼时间"), _("确认时间"), _("集合点")],
    )
    for p in rep.persons:
        status = _("已确认安全") if p["safe_at"] is not None else _("未确认")
        _append(
            people,
            [status, p["number"], p["name"], p["department"], p["door"], p["entered"], p["safe_at"] or "", p["point"]],
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
