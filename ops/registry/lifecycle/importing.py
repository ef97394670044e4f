"""Batch lists from HR (R-CARD-4) and Academic Affairs (R-CARD-5): preview, then apply.

``preview_import`` reads and validates the list (and its photos), compares it with the
cardholders on record and stores the plan — it changes no cardholder. ``apply_import`` applies
exactly that plan, in one transaction, with one audit record per affected person. Re-importing
the same list previews as "nothing to do". Every rejected row says which row, which column, why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.audit import services as audit
from ops.bulk import fast_insert
from ops.masking import mask_citizen_id
from ops.registry import citizen_id
from ops.registry.choices import HolderKind, HolderStatus
from ops.registry.lifecycle import list_kinds, list_rights, photo_store, tabular
from ops.registry.lifecycle import photos as photo_checks
from ops.registry.lifecycle.choices import ImportKind, ImportStatus
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import ImportBatch
from ops.registry.models import Cardholder, Department

Progress = Callable[[str, int, int], object]  # (phase, done, total); what it returns is ignored
COLUMNS = {"student": tabular.STUDENT_COLUMNS, "staff": tabular.STAFF_COLUMNS}
OPTIONAL = {"student": tabular.STUDENT_OPTIONAL}
KIND = {"student": HolderKind.STUDENT, "staff": HolderKind.STAFF}
FIELDS = {"student": ("name", "department", "class_name", "citizen_id"), "staff": ("name", "department", "title")}
PHOTO_COLUMN = "照片"
MAX_REJECTED_KEPT = 1000  # rejected rows a plan keeps (the count is of all; issue 20, item 5)
MAX_VALUE_KEPT = 64  # characters of a rejected cell kept in the plan
HOLDER_FIELDS = (
    "kind",
    "number",
    "name",
    "department",
    "class_name",
    "title",
    "citizen_id",
    "phone",
    "study_end",
    "photo_sha256",
    "status",
    "created_at",
    "updated_at",
)


def photo_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "photos"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _staging(batch_id: int) -> Path:
    path = Path(settings.MEDIA_ROOT) / "imports" / str(batch_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _noop(_phase: str, _done: int, _total: int) -> None:
    return None


# R-CARD-4/5, R-SEC-3: staff lists come from HR, student lists from Academic Affairs; NIC, who
# runs the system, handles both. Nobody else imports a list or reads one (they hold personal data).
IMPORTERS: dict[Role, frozenset[str]] = {
    Role.NIC: frozenset({"staff", "student"}),
    Role.HR: frozenset({"staff"}),
    Role.ACADEMIC: frozenset({"student"}),
}
# issue 18, Build 7: the lists beyond enrolment, each by the office that answers for it
for _role, _kinds in list_rights.IMPORTERS.items():
    IMPORTERS[_role] = IMPORTERS.get(_role, frozenset()) | _kinds


def may_import(operator: Any, kind: str | None = None) -> bool:
    """May ``operator`` import (and read) lists of ``kind`` — or of any kind, if None."""
    role = role_of(operator)
    kinds = IMPORTERS.get(role, frozenset()) if role is not None else frozenset()
    return bool(kinds) if kind is None else kind in kinds


def importable_kinds(operator: Any) -> list[str]:
    """The kinds of list ``operator`` may import, in the order of :class:`ImportKind`."""
    return [k for k in ImportKind.values if may_import(operator, k)]


def require_import_right(operator: Any, kind: str | None = None) -> None:
    if not may_import(operator, kind):
        if kind in list_kinds.KINDS:
            raise PermissionDenied(
                _("您无权导入或查看“%(kind)s”：由网信中心和负责该名单的部门导入") % {"kind": ImportKind(kind).label}
            )
        raise PermissionDenied(_("只有网信中心、人事处（教职工名单）和教务处（学生名单）可以导入或查看名单"))


def preview_import(
    *,
    kind: str,
    filename: str,
    data: bytes,
    operator: Any,
    photo_set: photo_checks.PhotoSet | None = None,
    progress: Progress = _noop,
) -> ImportBatch:
    if kind not in COLUMNS and kind not in list_kinds.KINDS:
        raise CardRuleError(
            _("名单类型应为以下之一：%(kinds)s") % {"kinds": "、".join(f"{k}（{v}）" for k, v in ImportKind.choices)}
        )
    require_import_right(operator, kind)
    if kind in list_kinds.KINDS:
        if photo_set is not None:
            raise CardRuleError(_("照片包只随学生名单或教职工名单导入"))
        return _preview_list(kind=kind, filename=filename, data=data, operator=operator, progress=progress)
    try:
        table = tabular.read_table(filename, data)
    except tabular.TableError as exc:
        raise CardRuleError(str(exc)) from None
    progress("read", len(table.rows), len(table.rows))
    records, row_errors = tabular.normalize(table, COLUMNS[kind], OPTIONAL.get(kind))
    errors = [asdict(e) for e in row_errors]
    headers = _headers(table, COLUMNS[kind])
    headers_opt = _headers(table, OPTIONAL.get(kind, {}))
    today = timezone.localdate()
    departments = {d.name: d.id for d in Department.objects.all()}
    existing: dict[str, Mapping[str, Any]] = {
        h["number"]: h
        for h in Cardholder.objects.filter(number__in=[r["number"] for r in records]).values(
            "number", "kind", "name", "department_id", "class_name", "title", "citizen_id", "photo_sha256", "study_end"
        )
    }
    photo_problems: dict[str, list[photo_checks.PhotoProblem]] = {}
    if photo_set is not None:
        wanted = [(r["number"], photo_set.photos[r["number"]]) for r in records if r["number"] in photo_set.photos]
        photo_problems = photo_checks.check_many(wanted)
        progress("photos", len(wanted), len(wanted))
    creates: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    unchanged = 0
    kind_value = KIND[kind]
    for record in records:
        number, row = record["number"], record["row"]
        problems = _row_problems(record, kind, kind_value, departments, existing, headers, photo_set, photo_problems)
        if problems:
            errors.extend(problems)
            continue
        values = {f: record.get(f, "") for f in FIELDS[kind]}
        values["department"] = departments[values["department"]]
        given = False
        if kind == "student":  # R-END-1, R-END-3: every listed student has an end of study
            found = tabular.study_end(record, today)
            if isinstance(found, str):
                column = next(
                    (headers_opt[f] for f in ("study_end", "entry_year", "study_years") if f in headers_opt), ""
                )
                errors.append({"row": row, "column": column, "value": "", "message": found})
                continue
            values["study_end"], given = found[0].isoformat(), found[1]
        if photo_set is not None:
            values["photo_sha256"] = photo_store.save(photo_set.photos[number])
        current = existing.get(number)
        if current is None:
            creates.append({"row": row, "number": number, **values})
            continue
        if "study_end" in values and not (given or current["study_end"] is None):
            del values["study_end"]  # a default never replaces a date on record (a deferral, say)

        changed = {f: v for f, v in values.items() if _on_record(current, f) != v}
        if changed:  # issue 19, item 9: the preview shows old → new
            old = {f: _on_record(current, f) for f in changed}
            updates.append({"row": row, "number": number, "name": current["name"], "changes": changed, "old": old})
        else:
            unchanged += 1
    errors.sort(key=lambda e: (e["row"], e["column"]))
    batch = ImportBatch.objects.create(
        kind=kind,
        filename=filename[:200],
        sha256=hashlib.sha256(data).hexdigest(),
        created_by=operator if getattr(operator, "pk", None) else None,
        rows=len(table.rows),
        plan={
            "create": creates,
            "update": updates,
            "unchanged": unchanged,
            # bounded (issue 20, item 5): the first MAX_REJECTED_KEPT problems, each value cut
            # short; the count is of all of them
            "rejected": [_bounded(e) for e in errors[:MAX_REJECTED_KEPT]],
            "rejected_total": len(errors),
        },
    )
    if photo_set is not None:  # keep the accepted photos until the operator applies
        staging = _staging(batch.id)
        for item in creates + updates:
            if "photo_sha256" in item or "photo_sha256" in item.get("changes", {}):
                (staging / f"{item['number']}.jpg").write_bytes(photo_set.photos[item["number"]])
    audit.record(
        actor=operator,
        action="import.preview",
        object_type="import_batch",
        object_id=batch.id,
        data={
            "file": filename,
            "create": len(creates),
            "update": len(updates),
            "unchanged": unchanged,
            "rejected": len(errors),
        },
    )
    return batch


def _bounded(error: dict[str, Any]) -> dict[str, Any]:
    value = str(error.get("value", ""))
    if len(value) > MAX_VALUE_KEPT:
        value = value[:MAX_VALUE_KEPT] + "…"
    return {**error, "value": value}


def read_upload(upload: Any) -> bytes:
    """An uploaded list's bytes — refused by its size before it is read (issue 20, item 5: a
    50 MB CSV took 52 s and 2.1 GB before it was refused). Django has it on disk by then."""
    try:
        tabular.check_file_size(upload.size)
    except tabular.TableError as exc:
        raise CardRuleError(str(exc)) from None
    return upload.read()


def _on_record(current: Mapping[str, Any], field: str) -> Any:
    value = current["department_id" if field == "department" else field]
    return value.isoformat() if field == "study_end" and value is not None else value


def _headers(table: tabular.Table, columns: dict[str, tuple[str, ...]]) -> dict[str, str]:
    keys = {tabular.header_key(a): name for name, aliases in columns.items() for a in aliases}
    return {keys[tabular.header_key(h)]: h for h in table.headers if tabular.header_key(h) in keys}


def _row_problems(
    record, kind, kind_value, departments, existing, headers, photo_set, photo_problems
) -> list[dict[str, Any]]:
    row, number = record["row"], record["number"]
    out = []
    if record["department"] not in departments:
        out.append(
            {
                "row": row,
                "column": headers["department"],
                "value": record["department"],
                "message": _("系统中没有名为“%(name)s”的部门/学系，请先由网信中心添加")
                % {"name": record["department"]},
            }
        )
    current = existing.get(number)
    if current is not None and current["kind"] != kind_value:
        out.append(
            {
                "row": row,
                "column": headers["number"],
                "value": number,
                "message": _("编号 %(number)s 已属于另一类持卡人（%(kind)s），不能作为%(list)s导入")
                % {
                    "number": number,
                    "kind": HolderKind(current["kind"]).label,
                    "list": _("学生") if kind == "student" else _("教职工"),
                },
            }
        )
    if photo_set is not None:
        if number not in photo_set.photos:
            out.append(
                {
                    "row": row,
                    "column": PHOTO_COLUMN,
                    "value": "",
                    "message": _("照片包中没有 %(number)s 的照片（文件名应为学号/工号）") % {"number": number},
                }
            )
        else:
            out.extend(
                {"row": row, "column": PHOTO_COLUMN, "value": f"{number}.jpg", "message": str(p.message)}
                for p in photo_problems.get(number, [])
            )
    return out


@transaction.atomic
def apply_import(*, batch: ImportBatch, operator: Any, progress: Progress = _noop) -> dict[str, int]:
    require_import_right(operator, batch.kind)
    batch = ImportBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != ImportStatus.PREVIEWED:
        raise CardRuleError(
            _("这份名单已经导入过了（%(at)s）")
            % {"at": timezone.localtime(batch.applied_at).strftime("%Y-%m-%d %H:%M")}
        )
    plan = batch.plan
    if batch.kind in list_kinds.KINDS:
        return _apply_list(batch=batch, operator=operator, progress=progress)
    kind_value = KIND[batch.kind]
    creates, updates = plan["create"], plan["update"]
    total = len(creates) + len(updates)
    now = timezone.now()
    new = [
        (
            kind_value,
            c["number"],
            c["name"],
            c["department"],
            c.get("class_name", ""),
            c.get("title", ""),
            c.get("citizen_id", ""),
            "",
            date.fromisoformat(c["study_end"]) if c.get("study_end") else None,
            c.get("photo_sha256", ""),
            HolderStatus.ACTIVE,
            now,
            now,
        )
        for c in creates
    ]
    for start in range(0, len(new), 5000):
        fast_insert(Cardholder, HOLDER_FIELDS, new[start : start + 5000])
        progress("apply", min(start + 5000, len(new)), total)
    if updates:
        holders = Cardholder.objects.in_bulk([u["number"] for u in updates], field_name="number")
        changed_fields: set[str] = set()
        for u in updates:
            holder = holders[u["number"]]
            for field, value in u["changes"].items():
                if field == "study_end":
                    value = date.fromisoformat(value)
                setattr(holder, "department_id" if field == "department" else field, value)
                changed_fields.add("department_id" if field == "department" else field)
        Cardholder.objects.bulk_update(list(holders.values()), sorted(changed_fields | {"updated_at"}), batch_size=2000)
        progress("apply", total, total)
    transaction.on_commit(lambda: _move_photos(batch.id))  # files follow the commit
    basis = _("%(kind)s名单 %(file)s（导入批次 %(id)s）") % {
        "kind": _("学生") if batch.kind == "student" else _("教职工"),
        "file": batch.filename,
        "id": batch.id,
    }
    audit.record_many(
        actor=operator,
        basis=basis,
        entries=[
            *(audit.Entry("holder.create", "cardholder", c["number"], {"row": c["row"]}) for c in creates),
            *(
                audit.Entry(
                    "holder.update", "cardholder", u["number"], {"row": u["row"], "fields": sorted(u["changes"])}
                )
                for u in updates
            ),
        ],
    )
    batch.status = ImportStatus.APPLIED
    batch.applied_at = timezone.now()
    batch.save(update_fields=["status", "applied_at"])
    return {
        "created": len(creates),
        "updated": len(updates),
        "unchanged": plan["unchanged"],
        "rejected": plan.get("rejected_total", len(plan["rejected"])),
    }


def _move_photos(batch_id: int) -> None:
    staging = Path(settings.MEDIA_ROOT) / "imports" / str(batch_id)
    if not staging.exists():
        return
    target = photo_dir()
    for photo in staging.iterdir():
        photo.replace(target / photo.name)
    staging.rmdir()


def for_display(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Plan rows as shown to an operator (review page, API answers): a valid citizen ID number —
    a duplicate in the list, a new or changed one — only masked (PIPL minimisation, R-SEC-2);
    an invalid value is shown as written, so that the operator can find and correct it."""

    def masked(value: Any) -> Any:
        return mask_citizen_id(value) if isinstance(value, str) and citizen_id.is_valid(value) else value

    shown = []
    for row in rows:
        row = {k: masked(v) for k, v in row.items()}
        if isinstance(row.get("changes"), dict):
            row["changes"] = {k: masked(v) for k, v in row["changes"].items()}
        shown.append(row)
    return shown


def summary(batch: ImportBatch) -> dict[str, int]:
    plan = batch.plan
    return {
        "create": len(plan["create"]),
        "update": len(plan["update"]),
        "unchanged": plan["unchanged"],
        "rejected": plan.get("rejected_total", len(plan["rejected"])),
    }


# ---------------------------------------------------------------- lists beyond enrolment
# issue 18, Build 7: the same pipeline — read, normalise, preview (stored plan, nothing
# changed), apply exactly the plan in one transaction — with a row spec per kind
# (:mod:`ops.registry.lifecycle.list_kinds`).


def _preview_list(*, kind: str, filename: str, data: bytes, operator: Any, progress: Progress) -> ImportBatch:
    spec = list_kinds.KINDS[kind]
    try:
        table = tabular.read_table(filename, data)
    except tabular.TableError as exc:
        raise CardRuleError(str(exc)) from None
    progress("read", len(table.rows), len(table.rows))
    records, row_errors = tabular.normalize(table, spec.columns, spec.optional)
    errors = [asdict(e) for e in row_errors]
    headers = {**_headers(table, spec.columns), **_headers(table, spec.optional)}
    holders = Cardholder.objects.select_related("department", "dorm_building").in_bulk(
        [r["number"] for r in records], field_name="number"
    )
    ctx = list_kinds.context(kind, operator, headers, records)
    list_kinds.load_live_cards(ctx, [h.pk for h in holders.values()])
    updates: list[dict[str, Any]] = []
    unchanged = 0
    for record in records:
        problems, target, diff = list_kinds.plan_row(ctx, record, holders.get(record["number"]))
        if problems:
            for f, v, m in problems:
                column = headers.get(f) or spec.columns.get(f, ("",))[0]
                errors.append({"row": record["row"], "column": column, "value": v, "message": m})
        elif diff:
            holder = holders[record["number"]]
            updates.append(
                {
                    "row": record["row"],
                    "number": holder.number,
                    "name": holder.name,
                    "target": target,
                    "changes": {f: new for f, (_old, new) in diff.items()},
                    "old": {f: old for f, (old, _new) in diff.items()},
                }
            )
        else:
            unchanged += 1
    errors.sort(key=lambda e: (e["row"], e["column"]))
    batch = ImportBatch.objects.create(
        kind=kind,
        filename=filename[:200],
        sha256=hashlib.sha256(data).hexdigest(),
        created_by=operator if getattr(operator, "pk", None) else None,
        rows=len(table.rows),
        plan={
            "create": [],
            "update": updates,
            "unchanged": unchanged,
            "rejected": [_bounded(e) for e in errors[:MAX_REJECTED_KEPT]],
            "rejected_total": len(errors),
        },
    )
    audit.record(
        actor=operator,
        action="import.preview",
        object_type="import_batch",
        object_id=batch.id,
        data={"file": filename, "kind": kind, "update": len(updates), "unchanged": unchanged, "rejected": len(errors)},
    )
    return batch


def _apply_list(*, batch: ImportBatch, operator: Any, progress: Progress) -> dict[str, int]:
    """Runs inside :func:`apply_import`'s transaction: a row the lifecycle refuses (a card
    changed since the preview, a bed taken) rolls the whole list back, with the reason."""
    spec = list_kinds.KINDS[batch.kind]
    plan = batch.plan
    updates = plan["update"]
    basis = _("%(kind)s %(file)s（导入批次 %(id)s）") % {"kind": spec.title, "file": batch.filename, "id": batch.id}
    ctx = list_kinds.context(batch.kind, operator, {}, updates)
    holders = (
        Cardholder.objects.select_for_update(of=("self",))
        .select_related("department", "dorm_building")
        .in_bulk([u["number"] for u in updates], field_name="number")
    )
    entries: list[audit.Entry] = []
    for done, update in enumerate(updates, 1):
        holder = holders.get(update["number"])
        if holder is None:
            raise CardRuleError(_("第 %(row)d 行：持卡人 %(number)s 已不在系统中") % update)
        try:
            diff = spec.apply(ctx, holder, update["target"], basis)
        except CardRuleError as exc:
            raise CardRuleError(
                _("第 %(row)d 行（%(number)s）：%(reason)s，整份名单未导入")
                % {"row": update["row"], "number": update["number"], "reason": " ".join(exc.messages)}
            ) from None
        if diff:  # nothing left to change (applied by another path since): no record of a change
            entries.append(
                audit.Entry(
                    f"holder.{batch.kind}",
                    "cardholder",
                    holder.number,
                    {"row": update["row"], "changes": {f: [str(o), str(n)] for f, (o, n) in diff.items()}},
                )
            )
        progress("apply", done, len(updates))
    audit.record_many(actor=operator, basis=basis, entries=entries)
    batch.status = ImportStatus.APPLIED
    batch.applied_at = timezone.now()
    batch.save(update_fields=["status", "applied_at"])
    return {
        "created": 0,
        "updated": len(entries),
        "unchanged": plan["unchanged"] + len(updates) - len(entries),
        "rejected": plan.get("rejected_total", len(plan["rejected"])),
    }


def _shown(field: str, value: Any, departments: dict[int, str]) -> str:
    if value is None or value == "":
        return "—"
    if field == "department" and isinstance(value, int):
        return departments.get(value, str(value))
    if field == "citizen_id" and isinstance(value, str) and citizen_id.is_valid(value):
        return mask_citizen_id(value)
    if field == "photo_sha256":
        return str(value)[:12] + "…"
    return str(value)


def updates_for_display(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 19, item 9: each row to be updated with its changed fields, old → new (citizen IDs
    masked, departments by name)."""
    ids = {
        v
        for r in rows
        for part in (r.get("changes", {}), r.get("old", {}))
        for f, v in part.items()
        if f == "department" and isinstance(v, int)
    }
    departments = dict(Department.objects.filter(id__in=ids).values_list("id", "name"))
    shown = []
    for r in rows:
        old = r.get("old", {})
        diff = [
            {
                "field": str(list_kinds.FIELD_LABELS.get(f, f)),
                "old": _shown(f, old[f], departments) if f in old else "?",
                "new": _shown(f, v, departments),
            }
            for f, v in r["changes"].items()
        ]
        shown.append({"row": r["row"], "number": r["number"], "name": r.get("name", ""), "diff": diff})
    return shown


def creates_for_display(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows to be created, as the preview lists them (issue 19, item 9)."""
    departments = dict(Department.objects.filter(id__in={r["department"] for r in rows}).values_list("id", "name"))
    return [
        {
            "row": r["row"],
            "number": r["number"],
            "name": r.get("name", ""),
            "department": departments.get(r["department"], ""),
            "detail": r.get("class_name") or r.get("title") or "",
        }
        for r in rows
    ]
