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
from ops.registry.lifecycle.choices import ImportStatus
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import ImportBatch

PROGRESS_KEY = "campuscard:import-progress:{}"


class UploadForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("名单类型"), choices=[("student", _("学生名单（教务处）")), ("staff", _("教职工名单（人事处）"))]
    )
    file = forms.FileField(
        label=_("名单文件"), help_text=_("CSV 或 XLSX，表头为中文：姓名、学号、身份证号、学系、班级…")
    )
    photos = forms.FileField(
        label=_("照片包（可选）"), required=False, help_text=_("zip，文件名为学号/工号，如 2026CS00001.jpg")
    )


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
        return super().get_queryset(request).defer("plan")

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
        form = UploadForm(request.POST or None, request.FILES or None)
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
        return render(
            request,
            "admin/cards/import_review.html",
            {
                "batch": batch,
                "summary": importing.summary(batch),
                "rejected": importing.for_display(plan["rejected"][:500]),
                "creates": importing.for_display(plan["create"][:20]),
                "updates": importing.for_display(plan["update"][:20]),
                "progress": _progress(batch.id),
                "title": _("导入预览"),
                **self.admin_site.each_context(request),
            },
        )

    def progress_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        batch = get_object_or_404(ImportBatch, pk=pk)
        importing.require_import_right(request.user, batch.kind)
        return JsonResponse({"status": batch.status, **_progress(batch.id)})
