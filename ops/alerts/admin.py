"""NIC's admin for notifications (issue 16): channels, routing rules, duty rosters — NIC only
(R-SEC-3), every change audited through the admin's log (``ops/accounts/audit_hooks.py``).
A channel's key and secret are write-only: the page never sends them back to the browser."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.admin_kit import ReadOnlyAdmin
from ops.alerts.choices import AlertKind
from ops.alerts.models import (
    DeliveryAttempt,
    DutyRoster,
    DutyShift,
    Notification,
    NotificationChannel,
    RepairStep,
    RepairTicket,
    RoutingRule,
)


def _is_nic(request: HttpRequest) -> bool:
    user = request.user
    return bool(getattr(user, "is_superuser", False)) or role_of(user) == Role.NIC


class NicOnly(admin.ModelAdmin):
    """Only NIC sees or edits these, whatever permissions a group was given by hand."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_nic(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_nic(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return _is_nic(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_nic(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_nic(request) and super().has_delete_permission(request, obj)


WRITE_ONLY = ("token", "secret")


class ChannelForm(forms.ModelForm):
    """The key and secret inputs start empty on a saved channel; left empty, what is on record
    stays; ticking "clear" removes it."""

    clear_token = forms.BooleanField(label=_("清除 key / access_token"), required=False)
    clear_secret = forms.BooleanField(label=_("清除签名密钥"), required=False)

    class Meta:
        model = NotificationChannel
        fields = ("name", "kind", "address", "token", "secret", "rate_per_minute", "enabled")
        widgets = {name: forms.PasswordInput(render_value=False) for name in WRITE_ONLY}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in WRITE_ONLY:
            self.initial[name] = ""
            if self.instance.pk and getattr(self.instance, name):
                self.fields[name].widget.attrs["placeholder"] = str(_("已设置（不显示）；留空则保持不变"))

    def _kept(self, name: str) -> str:
        value = (self.cleaned_data.get(name) or "").strip()
        return value or (getattr(self.instance, name) if self.instance.pk else "")

    def clean_token(self) -> str:
        return self._kept("token")

    def clean_secret(self) -> str:
        return self._kept("secret")

    def clean(self) -> dict[str, Any]:
        super().clean()
        for name in WRITE_ONLY:  # clear_* is cleaned after the field itself
            if self.cleaned_data.get(f"clear_{name}"):
                self.cleaned_data[name] = ""
        return self.cleaned_data


@admin.register(NotificationChannel)
class NotificationChannelAdmin(NicOnly):
    form = ChannelForm
    list_display = ("name", "kind", "shown_address", "rate_per_minute", "has_token", "has_secret", "enabled")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)

    @admin.display(description=_("地址"))
    def shown_address(self, obj: NotificationChannel) -> str:
        if obj.kind == "email":
            return obj.address
        return obj.endpoint().split("?", 1)[0]  # a query may carry a gateway's key: the list shows no query

    @admin.display(description=_("key 已设置"), boolean=True)
    def has_token(self, obj: NotificationChannel) -> bool:
        return bool(obj.token)

    @admin.display(description=_("密钥已设置"), boolean=True)
    def has_secret(self, obj: NotificationChannel) -> bool:
        return bool(obj.secret)


class DutyShiftInline(admin.TabularInline):
    model = DutyShift
    extra = 1
    fields = ("user", "weekdays", "start", "end")


@admin.register(DutyRoster)
class DutyRosterAdmin(NicOnly):
    list_display = ("name", "description")
    inlines = [DutyShiftInline]


class RuleForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        label=_("告警类型"),
        choices=AlertKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("不选为全部类型"),
    )

    class Meta:
        model = RoutingRule
        fields = (
            "name",
            "enabled",
            "kinds",
            "min_severity",
            "buildings",
            "owner_departments",
            "level",
            "delay_s",
            "group_by",
            "group_window_s",
            "channels",
            "operators",
            "rosters",
            "repair_steps",
        )


@admin.register(RoutingRule)
class RoutingRuleAdmin(NicOnly):
    form = RuleForm
    list_display = ("name", "enabled", "level", "delay_s", "min_severity", "group_by", "group_window_s")
    list_filter = ("enabled", "level", "min_severity")
    filter_horizontal = ("buildings", "owner_departments", "channels", "operators", "rosters")
    fieldsets = (
        (None, {"fields": ("name", "enabled")}),
        (_("哪些告警"), {"fields": ("kinds", "min_severity", "buildings", "owner_departments")}),
        (_("何时"), {"fields": ("level", "delay_s", "group_by", "group_window_s")}),
        (_("通知谁、怎么通知"), {"fields": ("channels", "operators", "rosters", "repair_steps")}),
    )

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "operators":  # operator accounts only, active ones
            kwargs["queryset"] = get_user_model().objects.filter(is_active=True, operator__isnull=False)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("at", "attempt", "status", "alerts", "recipients", "error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(NicOnly, ReadOnlyAdmin):
    """Written only by the supervisor: the admin shows them and their delivery log."""

    list_display = ("opened_at", "rule_name", "level", "channel_name", "group_key", "status", "attempts", "sent_at")
    list_filter = ("status", "level")
    search_fields = ("rule_name", "channel_name", "group_key")
    inlines = [DeliveryAttemptInline]
    exclude = ("claimed_until",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Notification]:
        return super().get_queryset(request).select_related("rule", "channel")


class RepairStepInline(admin.TabularInline):
    model = RepairStep
    extra = 0
    can_delete = False
    fields = ("at", "actor", "from_state", "to_state", "comment")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RepairTicket)
class RepairTicketAdmin(NicOnly, ReadOnlyAdmin):
    """Issue 18, Build 1: read-only — a ticket's state changes only through ``ops.alerts.repairs``
    (its page /repairs/<id>/), so every step is checked against the table, logged and told."""

    list_display = ("id", "device", "state", "cause", "reporter_department", "opened_at", "repaired_at", "page")
    list_filter = ("state", "cause")
    search_fields = ("device__code", "device__name", "description")
    inlines = [RepairStepInline]
    readonly_fields = ("state", "page")

    def get_queryset(self, request: HttpRequest) -> QuerySet[RepairTicket]:
        return super().get_queryset(request).select_related("device", "reporter_department")

    @admin.display(description=_("处理"))
    def page(self, obj: RepairTicket) -> str:
        return format_html('<a href="{}">{}</a>', reverse("repair-detail", args=[obj.pk]), _("打开维修单"))
