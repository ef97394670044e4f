"""NIC sets a cardholder's self-service password at the desk (issue 18, Build 6): the holder is
present with their ID; the admin keeps only the hash; every setting audited (the service's own
record and the admin's log entry)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from ops.selfservice import services
from ops.selfservice.models import HolderPassword


class HolderPasswordForm(forms.ModelForm):
    new_password = forms.CharField(
        label=_("新密码"),
        widget=forms.PasswordInput(render_value=False),
        strip=False,
        help_text=_("持卡人本人持身份证在场时设置；至少 8 位，不含学工号或身份证号。"),
    )
    repeat_password = forms.CharField(label=_("再次输入新密码"), widget=forms.PasswordInput, strip=False)

    class Meta:
        model = HolderPassword
        fields = ("holder",)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("new_password") != data.get("repeat_password"):
            raise ValidationError(_("两次输入的密码不一致"))
        holder = data.get("holder") or (self.instance.holder if self.instance.pk else None)
        if holder is not None and data.get("new_password"):
            try:
                services.check_new_password(holder, data["new_password"])
            except services.SelfServiceError as exc:
                self.add_error("new_password", str(exc))
        return data


@admin.register(HolderPassword)
class HolderPasswordAdmin(admin.ModelAdmin):
    form = HolderPasswordForm
    list_display = ("holder", "set_at", "set_by")
    search_fields = ("holder__number",)
    raw_id_fields = ("holder",)
    readonly_fields = ("set_at", "set_by")

    def get_readonly_fields(self, request: Any, obj: Any = None) -> Any:
        return ("holder", "set_at", "set_by") if obj is not None else ("set_at", "set_by")

    def save_model(self, request: Any, obj: HolderPassword, form: Any, change: bool) -> None:
        holder = obj.holder
        try:
            row = services.set_password(
                holder=holder, raw_password=form.cleaned_data["new_password"], operator=request.user
            )
        except services.SelfServiceError as exc:  # checked by the form already: a last guard
            raise ValidationError(str(exc)) from exc
        obj.pk, obj.password, obj.set_at, obj.set_by = row.pk, row.password, row.set_at, row.set_by
