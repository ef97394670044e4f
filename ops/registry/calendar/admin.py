"""Admin for the academic calendar, door groups, door rules and the vacation stay list (issue 17).
Every write goes through :mod:`ops.registry.calendar.services` (audited, and sent to the doors);
what an operator may change is the services' rule, shown here by role: NIC keeps the calendar,
the groups and opening hours; dorm managers their buildings' dorm rules and stay list."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from ops.masking import mask_name
from ops.registry.calendar import services
from ops.registry.calendar.choices import DAY_TYPES, WEEKDAYS, RuleKind
from ops.registry.calendar.models import CalendarDay, DoorGroup, DoorRule, VacationStay
from ops.registry.models import Cardholder


def _refuse(request: HttpRequest, exc: services.DoorRuleError) -> None:
    messages.error(request, " ".join(exc.messages))


class RefusalsShown(admin.ModelAdmin):
    """A rule the service refuses (who may, what may) is shown on the page; nothing changed."""

    def _changeform_view(self, request: HttpRequest, object_id: Any, form_url: str, extra_context: Any) -> Any:
        try:
            return super()._changeform_view(  # type: ignore[misc]  # Django's private view, absent from the stubs
                request, object_id, form_url, extra_context
            )
        except services.DoorRuleError as exc:
            _refuse(request, exc)
            return HttpResponseRedirect(request.get_full_path())


@admin.register(CalendarDay)
class CalendarDayAdmin(admin.ModelAdmin):
    list_display = ("date", "day_type", "note")
    list_filter = ("day_type",)
    date_hierarchy = "date"
    search_fields = ("note",)
    change_list_template = "admin/door_calendar/calendarday/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return services.is_nic(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return services.is_nic(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return services.is_nic(request.user) and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: CalendarDay, form: Any, change: bool) -> None:
        saved = services.set_day(day=obj.date, day_type=obj.day_type, note=obj.note, operator=request.user)
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: CalendarDay) -> None:
        services.remove_day(day=obj, operator=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CalendarDay]) -> None:
        for day in queryset:
            services.remove_day(day=day, operator=request.user)

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="door_calendar_calendarday_import"), *super().get_urls()]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """导入校历: an ICS or CSV file; every problem with its row, nothing imported until clean."""
        if not services.is_nic(request.user):
            raise PermissionDenied
        form = CalendarImportForm(request.POST or None, request.FILES or None)
        problems: list[str] = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = services.import_calendar(
                    data=upload.read(), filename=upload.name, operator=request.user, basis=form.cleaned_data["basis"]
                )
            except services.DoorRuleError as exc:
                problems = list(exc.messages)
            else:
                messages.success(
                    request,
                    _("已导入 %(n)s 个日期（%(first)s 至 %(last)s）：新增 %(created)s，修改 %(changed)s，未变 %(same)s")
                    % {
                        "n": result.dates,
                        "first": result.first,
                        "last": result.last,
                        "created": result.created,
                        "changed": result.changed,
                        "same": result.unchanged,
                    },
                )
                return HttpResponseRedirect(reverse("admin:door_calendar_calendarday_changelist"))
        return render(
            request,
            "admin/door_calendar/import.html",
            {"form": form, "problems": problems, "title": _("导入校历"), **self.admin_site.each_context(request)},
        )


class CalendarImportForm(forms.Form):
    file = forms.FileField(label=_("校历文件（ICS 或 CSV）"))
    basis = forms.CharField(label=_("依据"), max_length=200, help_text=_("如：教务处校历通知编号"))


class DoorGroupForm(forms.ModelForm):
    class Meta:
        model = DoorGroup
        fields = ("code", "name", "devices", "buildings")


@admin.register(DoorGroup)
class DoorGroupAdmin(RefusalsShown):
    form = DoorGroupForm
    list_display = ("code", "name")
    search_fields = ("code", "name")
    filter_horizontal = ("devices", "buildings")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return services.is_nic(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return services.is_nic(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return services.is_nic(request.user) and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: DoorGroup, form: Any, change: bool) -> None:
        pass  # saved with its members by the service, in save_related

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        services.save_door_group(
            group=form.instance,
            devices=form.cleaned_data["devices"],
            buildings=form.cleaned_data["buildings"],
            operator=request.user,
        )

    def delete_model(self, request: HttpRequest, obj: DoorGroup) -> None:
        try:
            services.delete_door_group(group=obj, operator=request.user)
        except services.DoorRuleError as exc:
            _refuse(request, exc)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DoorGroup]) -> None:
        for group in queryset:
            self.delete_model(request, group)


class DoorRuleForm(forms.ModelForm):
    day_types = forms.MultipleChoiceField(
        label=_("日类型"), choices=DAY_TYPES.choices, widget=forms.CheckboxSelectMultiple
    )
    weekdays = forms.TypedMultipleChoiceField(
        label=_("限星期"),
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("不选：每天。例如只选周五，即“周五晚”的规则，优先于同日类型不限星期的规则"),
    )

    class Meta:
        model = DoorRule
        fields = (
            "name",
            "kind",
            "group",
            "day_types",
            "weekdays",
            "schedule",
            "closed_all_day",
            "curfew_start",
            "curfew_end",
            "curfew_closes",
            "vacation_closed",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        rule = self.instance
        for name in self.Meta.fields:
            if name in data:
                setattr(rule, name, data[name])
        if rule.group_id is not None:
            try:
                services.check_rule(rule)
            except services.DoorRuleError as exc:
                raise forms.ValidationError(exc.messages) from None
        return data


@admin.register(DoorRule)
class DoorRuleAdmin(RefusalsShown):
    form = DoorRuleForm
    list_display = ("name", "kind", "group", "day_type_labels", "weekday_labels", "schedule", "curfew_text")
    list_filter = ("kind", "group")
    list_select_related = ("group",)
    readonly_fields = ("updated_at", "updated_by")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        kind = form.base_fields.get("kind")
        if not services.is_nic(request.user) and isinstance(kind, forms.ChoiceField):
            kind.choices = [(RuleKind.DORM.value, RuleKind.DORM.label)]
        return form

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or services.may_edit_rule(request.user, obj))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or services.may_edit_rule(request.user, obj))

    def save_model(self, request: HttpRequest, obj: DoorRule, form: Any, change: bool) -> None:
        services.save_door_rule(rule=obj, operator=request.user)

    def delete_model(self, request: HttpRequest, obj: DoorRule) -> None:
        services.delete_door_rule(rule=obj, operator=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DoorRule]) -> None:
        for rule in queryset:
            services.delete_door_rule(rule=rule, operator=request.user)

    @admin.display(description=_("日类型"))
    def day_type_labels(self, obj: DoorRule) -> str:
        return "、".join(DAY_TYPES.label(t) for t in obj.day_types)

    @admin.display(description=_("限星期"))
    def weekday_labels(self, obj: DoorRule) -> str:
        names = dict(WEEKDAYS)
        return "、".join(str(names[int(w)]) for w in obj.weekdays) or str(_("每天"))

    @admin.display(description=_("晚归/闭门"))
    def curfew_text(self, obj: DoorRule) -> str:
        parts = []
        if obj.curfew:
            start, end = obj.curfew
            parts.append(f"{start:%H:%M}–{end:%H:%M} " + str(_("闭门") if obj.curfew_closes else _("晚归")))
        if obj.vacation_closed:
            parts.append(str(_("假期闭楼")))
        return "；".join(parts)


class VacationStayForm(forms.ModelForm):
    number = forms.CharField(label=_("学号"), max_length=32)

    class Meta:
        model = VacationStay
        fields = ("start", "end", "basis")

    def clean_number(self) -> Cardholder:
        number = self.cleaned_data["number"].strip()
        holder = Cardholder.objects.select_related("dorm_building").filter(number=number).first()
        if holder is None:
            raise forms.ValidationError(_("没有学号为 %(number)s 的持卡人") % {"number": number})
        return holder


@admin.register(VacationStay)
class VacationStayAdmin(RefusalsShown):
    """留校名单. A person's name is shown masked (R-SEC-2); an entry is added or revoked, never
    edited (the doors have it with the card)."""

    form = VacationStayForm
    list_display = ("holder_number", "masked_name", "building", "start", "end", "basis", "revoked_at")
    list_filter = ("start", "holder__dorm_building")
    search_fields = ("holder__number",)
    list_select_related = ("holder", "holder__dorm_building")
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[VacationStay]:
        stays = super().get_queryset(request)
        if services.is_nic(request.user):
            return stays
        scope = services.buildings_of(request.user) or set()
        return stays.filter(holder__dorm_building__code__in=scope)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("number", "start", "end", "basis")
        return ("holder_number", "masked_name", "building", "start", "end", "basis", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("holder_number", "masked_name", "building", "start", "end", "basis", "revoked_at")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked, never deleted: the record of who was let in stays

    def save_model(self, request: HttpRequest, obj: VacationStay, form: Any, change: bool) -> None:
        stay = services.add_stay(
            holder=form.cleaned_data["number"],
            start=obj.start,
            end=obj.end,
            operator=request.user,
            basis=obj.basis,
        )
        obj.pk, obj.holder = stay.pk, stay.holder

    @admin.action(description=_("撤销所选留校登记"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[VacationStay]) -> None:
        done = 0
        for stay in queryset.filter(revoked_at__isnull=True):
            try:
                services.revoke_stay(stay=stay, operator=request.user, basis=str(_("管理后台撤销")))
            except services.DoorRuleError as exc:
                _refuse(request, exc)
            else:
                done += 1
        if done:
            messages.success(request, _("已撤销 %(n)s 条留校登记") % {"n": done})

    @admin.display(description=_("学号"))
    def holder_number(self, obj: VacationStay) -> str:
        return obj.holder.number

    @admin.display(description=_("姓名"))
    def masked_name(self, obj: VacationStay) -> str:
        return mask_name(obj.holder.name)

    @admin.display(description=_("宿舍楼"))
    def building(self, obj: VacationStay) -> str:
        return str(obj.holder.dorm_building or "")
