"""Admin for the records the pipeline touches. Personal data is shown masked in lists
(PIPL minimisation); access events are read-only (they are the record of what happened)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ops.campus.models import AccessEvent, Building, Card, Cardholder, Department, Device
from ops.privacy import mask_citizen_id, mask_name, mask_phone


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("code", "name")
    search_fields = ("code", "name")


@admin.register(Building)
class BuildingAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "is_dorm")
    list_filter = ("is_dorm",)


class CardInline(admin.TabularInline):
    model = Card
    extra = 0
    fields = ("uid", "card_type", "status", "blacklisted", "issue_no", "valid_from", "valid_until")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Cardholder)
class CardholderAdmin(admin.ModelAdmin):
    list_display = ("number", "masked_name", "kind", "department", "dorm_building",
                    "masked_citizen_id", "masked_phone")
    list_filter = ("kind", "department", "dorm_building")
    search_fields = ("number",)
    list_select_related = ("department", "dorm_building")
    inlines = [CardInline]

    @admin.display(description=_("姓名"))
    def masked_name(self, obj: Cardholder) -> str:
        return mask_name(obj.name)

    @admin.display(description=_("身份证号"))
    def masked_citizen_id(self, obj: Cardholder) -> str:
        return mask_citizen_id(obj.citizen_id) if obj.citizen_id else ""

    @admin.display(description=_("手机号"))
    def masked_phone(self, obj: Cardholder) -> str:
        return mask_phone(obj.phone) if obj.phone else ""


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
    list_display = ("uid", "holder_number", "card_type", "status", "blacklisted", "issue_no",
                    "valid_until")
    list_filter = ("card_type", "status", "blacklisted")
    search_fields = ("uid", "holder__number")
    list_select_related = ("holder",)
    raw_id_fields = ("holder",)

    @admin.display(description=_("学工号"))
    def holder_number(self, obj: Card) -> str:
        return obj.holder.number


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "location", "building", "owner", "state",
                    "last_seen_at")
    list_filter = ("kind", "state", "building", "owner")
    search_fields = ("code", "name", "location")
    list_select_related = ("building", "owner")


@admin.register(AccessEvent)
class AccessEventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "device", "card_uid", "direction", "decision", "reason")
    list_filter = ("decision", "reason", "device__kind")
    search_fields = ("card_uid", "device__code")
    date_hierarchy = "occurred_at"
    list_select_related = ("device",)
    show_full_result_count = False  # the table is large: no COUNT(*) on every page

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
