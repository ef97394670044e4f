"""NIC sets which desk readers are assembly points (every change audited by the admin's log,
``ops.accounts.audit_hooks``); the musters are shown, never edited: they are written only by
``ops.muster.services``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ops.admin_kit import ReadOnlyAdmin
from ops.muster.models import Muster, MusterPoint
from ops.muster.services import muster_points_changed


@admin.register(MusterPoint)
class MusterPointAdmin(admin.ModelAdmin):
    list_display = ("place", "device", "device_location")
    search_fields = ("place", "device__code", "device__name")
    list_select_related = ("device",)

    @admin.display(description=_("位置"))
    def device_location(self, obj: MusterPoint) -> str:
        return obj.device.location

    # the live boards reload the muster points when they change
    def save_model(self, request: HttpRequest, obj: MusterPoint, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        muster_points_changed()

    def delete_model(self, request: HttpRequest, obj: MusterPoint) -> None:
        super().delete_model(request, obj)
        muster_points_changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[MusterPoint]) -> None:
        super().delete_queryset(request, queryset)
        muster_points_changed()


@admin.register(Muster)
class MusterAdmin(ReadOnlyAdmin):
    list_display = ("building", "reason", "started_by", "started_at", "ended_by", "ended_at", "inside", "safe")
    list_filter = ("building",)
    list_select_related = ("building", "started_by", "ended_by")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Muster]:
        return (
            super()
            .get_queryset(request)
            .annotate(n_inside=Count("persons"), n_safe=Count("persons", filter=Q(persons__safe_at__isnull=False)))
        )

    @admin.display(description=_("楼内人数"))
    def inside(self, obj: Any) -> int:
        return obj.n_inside

    @admin.display(description=_("已确认安全（结束时）"))
    def safe(self, obj: Any) -> int | str:
        return obj.n_safe if obj.ended_at else "—"
