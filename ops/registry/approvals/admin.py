from django.contrib import admin

from ops.admin_kit import ReadOnlyAdmin
from ops.registry.approvals.models import DeviceRequest


@admin.register(DeviceRequest)
class DeviceRequestAdmin(ReadOnlyAdmin):
    """The record of device requests (issue 18, Build 2): read-only — filed and decided on the
    requests page (/devices/requests/), through the services, audited."""

    list_display = (
        "requested_at",
        "kind",
        "device",
        "department",
        "status",
        "requested_by",
        "decided_by",
        "decided_at",
    )
    list_filter = ("kind", "status", "department")
    search_fields = ("device__code", "reason")
    list_select_related = ("device", "department", "requested_by", "decided_by")
