"""Forms for the card desk (admin pages). Each form's ``run`` calls exactly one service."""

from __future__ import annotations

from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ops.registry.choices import HolderStatus
from ops.registry.lifecycle import services
from ops.registry.lifecycle.choices import FeeKind
from ops.registry.lifecycle.models import AccessGrant, FeeCharge, FeePolicy
from ops.registry.models import Building, Card, Cardholder, Department, Device
from streams.cards import DeviceKind

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# help texts speak plainly (issue 19, item 7): the regulation's ids stay in the code — R-CARD-9
BASIS_HELP = _("申请表编号、函件编号或名单名称：谁审批，谁负责")


def _end_of(day: Any) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(23, 59, 59)))


class BasisForm(forms.Form):
    title: StrOrPromise  # each action's own form names it
    basis = forms.CharField(label=_("办理依据"), max_length=200, help_text=BASIS_HELP)

    def done_message(self, result: Any) -> str:
        """What the desk is told once the action is done (shown on the page it lands on)."""
        return _("%(action)s已办理：%(card)s") % {"action": self.title, "card": result}


class LossForm(BasisForm):
    title = _("挂失")

    def run(self, card: Card, operator: Any) -> Card:
        return services.report_loss(card=card, operator=operator, basis=self.cleaned_data["basis"])


class FoundForm(BasisForm):
    title = _("解挂")

    def run(self, card: Card, operator: Any) -> Card:
        return services.report_found(card=card, operator=operator, basis=self.cleaned_data["basis"])


class BlacklistForm(BasisForm):
    title = _("列入黑名单")

    def run(self, card: Card, operator: Any) -> Card:
        return services.set_blacklist(card=card, blacklisted=True, operator=operator, basis=self.cleaned_data["basis"])


class UnblacklistForm(BasisForm):
    title = _("移出黑名单")

    def run(self, card: Card, operator: Any) -> Card:
        return services.set_blacklist(card=card, blacklisted=False, operator=operator, basis=self.cleaned_data["basis"])


class CancelForm(BasisForm):
    title = _("注销")
    holder_status = forms.ChoiceField(
        label=_("注销原因"),
        required=False,
        choices=[
            ("", _("仅注销此卡")),
            (HolderStatus.WITHDRAWN, _("退学")),
            (HolderStatus.GRADUATED, _("毕业")),
            (HolderStatus.LEFT, _("离校/离职")),
        ],
    )

    def run(self, card: Card, operator: Any) -> Card:
        return services.cancel_card(
            card=card,
            operator=operator,
            basis=self.cleaned_data["basis"],
            holder_status=self.cleaned_data["holder_status"] or None,
        )


class ExtendForm(BasisForm):
    title = _("延期")
    new_until = forms.DateField(label=_("新的有效期至"), widget=forms.DateInput(attrs={"type": "date"}))
    approving_department = forms.ModelChoiceField(
        label=_("审批部门"),
        required=False,
        queryset=Department.objects.all(),
        help_text=_("临时卡：其管理部门，凭该部门注明新有效期的函件延期（函件编号填在办理依据中）"),
    )

    def run(self, card: Card, operator: Any) -> Card:
        return services.extend_validity(
            card=card,
            new_until=_end_of(self.cleaned_data["new_until"]),
            operator=operator,
            basis=self.cleaned_data["basis"],
            approving_department=self.cleaned_data["approving_department"],
        )


class ReplaceForm(BasisForm):
    title = _("补卡 / 换卡")
    new_uid = forms.CharField(
        label=_("新卡卡号（UID）"), max_length=24, help_text=_("把空白卡放在发卡器上读取，或手工输入")
    )
    # issue 19, item 7: a card's reasons only — 损坏设备赔偿 is a reader's repair (R-DEV-3)
    reason = forms.ChoiceField(
        label=_("原因"), choices=[(k.value, k.label) for k in map(FeeKind, services.REPLACEMENT_REASONS)]
    )
    fee = forms.DecimalField(
        label=_("收费（元）"), max_digits=8, decimal_places=2, required=False, help_text=_("留空按收费标准收取")
    )
    window = forms.CharField(label=_("收费窗口"), max_length=40, required=False)
    new_name = forms.CharField(label=_("变更后姓名"), max_length=64, required=False)
    new_citizen_id = forms.CharField(label=_("变更后身份证号"), max_length=18, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        policy = FeePolicy.current()
        self.fields["fee"].help_text = _("留空按收费标准 %(fee)s 元收取；上限 %(cap)s 元") % {
            "fee": policy.replacement_fee,
            "cap": policy.cap,
        }

    def done_message(self, result: Any) -> str:
        """Issue 19, item 7: the desk lands on the new card and is told the fee it charged."""
        charge = FeeCharge.objects.filter(card=result).order_by("-id").first()
        old = result.replaces.uid if result.replaces_id else ""
        if charge is None:  # pragma: no cover - replace_card always records the charge
            return _("补卡已办理：新卡 %(new)s 已启用，原卡 %(old)s 已作废") % {"new": result.uid, "old": old}
        return _("补卡已办理：新卡 %(new)s 已启用，原卡 %(old)s 已作废；已收取%(kind)s费用 %(fee)s 元（不予退还）") % {
            "new": result.uid,
            "old": old,
            "kind": charge.get_kind_display(),
            "fee": charge.amount,
        }

    def run(self, card: Card, operator: Any) -> Card:
        data = self.cleaned_data
        changes = {k: v for k, v in (("name", data["new_name"]), ("citizen_id", data["new_citizen_id"])) if v}
        return services.replace_card(
            card=card,
            new_uid=data["new_uid"],
            operator=operator,
            reason=data["reason"],
            basis=data["basis"],
            window=data["window"],
            fee=data["fee"],
            identity_changes=changes or None,
        )


class OperatorChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        full_name = obj.get_full_name()
        return f"{obj.get_username()}（{full_name}）" if full_name else obj.get_username()


def operators_on_record() -> Any:
    """Active operator accounts: who may be named as an approver (R-CARD-9)."""
    return get_user_model().objects.filter(is_active=True, operator__isnull=False).order_by("username")


class IssueForm(BasisForm):
    title = _("发卡")
    uid = forms.CharField(
        label=_("卡号（UID）"), max_length=24, help_text=_("把空白卡放在发卡器上读取（campuscard enroll），或手工输入")
    )
    # R-CARD-9: the approver is chosen from the records, never typed (谁审批，谁负责)
    approved_by_operator = OperatorChoiceField(
        label=_("审批人（在册操作员）"), required=False, queryset=operators_on_record()
    )
    approving_department = forms.ModelChoiceField(
        label=_("审批部门"),
        required=False,
        queryset=Department.objects.all(),
        help_text=_("审批人与审批部门至少选一项；临时卡的审批部门即其管理部门（谁审批，谁管理，谁负责）"),
    )
    card_type = forms.ChoiceField(
        label=_("卡类型"),
        required=False,
        choices=[("", _("按持卡人类别"))] + list(Card._meta.get_field("card_type").choices or []),
    )
    valid_until = forms.DateField(
        label=_("有效期至（临时卡必填）"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and not (data.get("approved_by_operator") or data.get("approving_department")):
            raise forms.ValidationError(_("必须指定审批人（在册操作员）或审批部门（谁审批，谁负责）"))
        return data

    def run(self, holder: Cardholder, operator: Any) -> Card:
        data = self.cleaned_data
        return services.issue_card(
            holder=holder,
            uid=data["uid"],
            operator=operator,
            approved_by_operator=data["approved_by_operator"],
            approving_department=data["approving_department"],
            basis=data["basis"],
            card_type=data["card_type"] or None,
            valid_until=_end_of(data["valid_until"]) if data["valid_until"] else None,
        )


class GrantForm(BasisForm):
    """R-CARD-7: a temporary card granted one dorm building or one door, until a date."""

    title = _("授权通行")
    building = forms.ModelChoiceField(
        label=_("楼宇"), required=False, queryset=Building.objects.order_by("code"), help_text=_("该楼宇的所有门")
    )
    device = forms.ModelChoiceField(
        label=_("设备"),
        required=False,
        queryset=Device.objects.filter(kind__in=[DeviceKind.DORM_DOOR, DeviceKind.LIBRARY_READER]).order_by("code"),
        help_text=_("或仅此一道门（宿舍门、图书馆读卡器）"),
    )
    until = forms.DateField(label=_("授权至"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("building")) == bool(data.get("device")):
            raise forms.ValidationError(_("请选择一个楼宇或一个设备（二者选一）"))
        return data

    def run(self, card: Card, operator: Any) -> Card:
        services.grant_access(
            card=card,
            place=self.cleaned_data["building"] or self.cleaned_data["device"],
            until=_end_of(self.cleaned_data["until"]),
            operator=operator,
            basis=self.cleaned_data["basis"],
        )
        return card


class RevokeGrantForm(BasisForm):
    title = _("撤销授权")
    takes_subject = True  # its choices are the card's own grants in force
    grant = forms.ModelChoiceField(label=_("授权"), queryset=AccessGrant.objects.none())

    def __init__(self, *args: Any, subject: Card, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["grant"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = AccessGrant.objects.filter(card=subject, revoked_at__isnull=True).select_related(
            "building", "device"
        )

    def run(self, card: Card, operator: Any) -> Card:
        services.revoke_grant(grant=self.cleaned_data["grant"], operator=operator, basis=self.cleaned_data["basis"])
        return card


CARD_FORMS: dict[str, type[BasisForm]] = {
    "lose": LossForm,
    "find": FoundForm,
    "blacklist": BlacklistForm,
    "unblacklist": UnblacklistForm,
    "cancel": CancelForm,
    "extend": ExtendForm,
    "replace": ReplaceForm,
    "grant": GrantForm,
    "revoke_grant": RevokeGrantForm,
}
