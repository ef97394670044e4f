"""The web import (admin): upload → preview (what would be created/updated/rejected, nothing
changed) → the operator accepts → apply in the background with visible progress."""

from __future__ import annotations

import json
import threading
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from ops.accounts.masked_lookups import MaskedLookupsAdmin
from ops.admin_kit import ReadOnlyAdmin
from ops.redis_client import client
from ops.registry.lifecycle import importing
from ops.registry.lifecycle import photos as photo_checks
from ops.registry.lifecycle.choices import ImportKind, ImportStatus
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import ImportBatch

PROGRESS_KEY = "campuscard:import-progress:{}"
SHOWN = 200  # rows to be created / updated listed on the review page (the counts are of all)


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("名单类型"), choices=ImportKind.choices)
    file = forms.FileField(
        label=_("名单文件"),
        help_text=_(
            "CSV 或 XLSX，表头为中文。学生名单：学号、姓名、学系、班级、身份证号；"
            "教职工名单：工号、姓名、部门、职务/职称；"
            "离校名单：学号/工号、离校类型（退学、离校、转学、离职、调离、退休）；延期毕业名单：学号、延期毕业日期；"
            "宿舍分配名单：学号、宿舍楼、房间、床位；教职工变动名单：工号、部门、职务/职称（均可另附“姓名”列以便核对）"
        ),
    )
    photos = forms.FileField(
        label=_("照片包（可选）"),
        required=False,
        help_text=_("仅用于学生/教职工名单：zip，文件名为学号/工号，如 2026CS00001.jpg"),
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if user is not None:  # only the lists this operator may import (issue 18, Build 7)
            kinds = set(importing.importable_kinds(user))
            kind_field = self.fields["kind"]
            assert isinstance(kind_field, forms.ChoiceField)
            kind_field.choices = [(k, label) for k, label in ImportKind.choices if k in kinds]


def _progress(batch_id: int) -> dict[str, Any]:
    raw = client().get(PROGRESS_KEY.format(batch_id))
    return json.loads(raw) if raw else {}


def _apply_in_background(batch: ImportBatch, operator: Any) -> None:
    redis_client = client()
    key = PROGRESS_KEY.format(batch.id)

    def report(phase: str, done: int, total: int) -> None:
        redis_client.set(key, json.dumps({"phase": phase, "done": done, "total": total}), ex=3600)

    def work() -> None:
        try:
            result = importing.apply_import(batch=batch, operator=operator, progress=report)
            redis_client.set(key, json.dumps({"phase": "done", **result}), ex=3600)
        except CardRuleError as exc:
            redis_client.set(key, json.dumps({"phase": "error", "message": " ".join(exc.messages)}), ex=3600)
        finally:
            close_old_connections()

    report("apply", 0, sum(importing.summary(batch)[k] for k in ("create", "update")))
    threading.Thread(target=work, name=f"import-{batch.id}", daemon=True).start()


@admin.register(ImportBatch)
class ImportBatchAdmin(MaskedLookupsAdmin, ReadOnlyAdmin):
    list_display = ("id", "filename", "kind", "status", "rows", "created_by", "created_at", "applied_at")
    list_filter = ("status", "kind")
    exclude = ("plan",)  # the raw plan holds full citizen IDs: the review page shows it masked
    change_list_template = "admin/cards/importbatch_changelist.html"

    def get_queryset(self, request: HttpRequest):
        """Lists and pages never load the plan (issue 20, item 5: it can be large); the review
        page reads it, once, for the one batch."""
        queryset = super().get_queryset(request).defer("plan")
        if getattr(request.user, "is_superuser", False):
            return queryset
        return queryset.filter(kind__in=importing.importable_kinds(request.user))  # only their own lists

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("upload/", wrap(self.upload_view), name="cards_importbatch_upload"),
            path("<int:pk>/review/", wrap(self.review_view), name="cards_importbatch_review"),
            path("<int:pk>/progress/", wrap(self.progress_view), name="cards_importbatch_progress"),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        importing.require_import_right(request.user)
        form = UploadForm(request.POST or None, request.FILES or None, user=request.user)
        error = None
        if request.method == "POST" and form.is_valid():
            try:
                photo_set = None
                upload = form.cleaned_data["file"]
                data = importing.read_upload(upload)  # refused by its size first (issue 20)
                if form.cleaned_data["photos"]:
                    photo_set = photo_checks.load_photo_set_from_upload(form.cleaned_data["photos"])
                batch = importing.preview_import(
                    kind=form.cleaned_data["kind"],
                    filename=upload.name,
                    data=data,
                    operator=request.user,
                    photo_set=photo_set,
                )
            except (CardRuleError, photo_checks.PhotoSetError) as exc:
                error = " ".join(getattr(exc, "messages", [str(exc)]))
            else:
                return HttpResponseRedirect(reverse("admin:cards_importbatch_review", args=[batch.pk]))
        return render(
            request,
            "admin/cards/import_upload.html",
            {"form": form, "rule_error": error, "title": _("导入名单"), **self.admin_site.each_context(request)},
        )

    def review_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        batch = get_object_or_404(ImportBatch, pk=pk)
        importing.require_import_right(request.user, batch.kind)
        if request.method == "POST" and batch.status == ImportStatus.PREVIEWED:
            _apply_in_background(batch, request.user)
            messages.info(request, _("已开始导入，请稍候"))
            return HttpResponseRedirect(reverse("admin:cards_importbatch_review", args=[pk]))
        plan = batch.plan
        applied = batch.status == ImportStatus.APPLIED
        return render(
            request,
            "admin/cards/import_review.html",
            {
                "batch": batch,
                "summary": importing.summary(batch),
                "rejected": importing.for_display(plan["rejected"][:500]),
                # issue 19, item 9: what will be created and what will be updated (old → new)
                "creates": importing.creates_for_display(plan["create"][:SHOWN]),
                "updates": importing.updates_for_display(plan["update"][:SHOWN]),
                "shown": SHOWN,
                "progress": _progress(batch.id),
                "applied": applied,
                # after apply the page says so (issue 19, item 9)
                "title": (_("已导入：%(kind)s") if applied else _("导入预览：%(kind)s"))
                % {"kind": batch.get_kind_display()},
                **self.admin_site.each_context(request),
            },
        )

    def progress_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        batch = get_object_or_404(ImportBatch, pk=pk)
        importing.require_import_right(request.user, batch.kind)
        return JsonResponse({"status": batch.status, **_progress(batch.id)})
