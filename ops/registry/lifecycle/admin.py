"""Admin for the card records: status history, fee ledger (with Finance's export), fee policy.
Ledger and history are append-only records: nobody edits or deletes them here."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ops.admin_kit import ReadOnlyAdmin
from ops.registry.choices import CARD_STATUSES
from ops.registry.lifecycle import import_admin, ledger, reconcile_admin, services
from ops.registry.lifecycle.choices import ChargeStatus
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import CardAction, FeeCharge, FeePolicy


@admin.register(CardAction)
class CardActionAdmin(ReadOnlyAdmin):
    list_display = ("at", "card", "action", "from_status_label", "to_status_label", "operator", "basis")
    list_filter = ("action",)
    search_fields = ("card__uid", "holder__number")
    list_select_related = ("card", "operator")

    # issue 19, item 6: a status in the operator's words, never the stored code (``lost``)
    @admin.display(description=_("原状态"), ordering="from_status")
    def from_status_label(self, obj: CardAction) -> str:
        return _status_label(obj.from_status)

    @admin.display(description=_("新状态"), ordering="to_status")
    def to_status_label(self, obj: CardAction) -> str:
        return _status_label(obj.to_status)


def _status_label(status: str) -> str:
    try:
        return CARD_STATUSES.label(status)
    except ValueError:
        return status  # "" (an issuance has no former status)


@admin.register(FeeCharge)
class FeeChargeAdmin(ReadOnlyAdmin):
    list_display = ("at", "kind", "amount", "status", "paid_at", "settled_by", "window", "channel", "reference", "card")
    list_filter = ("status", "kind", "window", "channel")
    search_fields = ("reference",)
    actions = ["record_payment"]

    @admin.action(description=_("登记已缴（财务窗口收款）"))
    def record_payment(self, request: HttpRequest, queryset) -> None:
        """Issue 13, defect 6: an owed charge (a damage charge) is paid — through the service,
        which refuses anyone but Finance or NIC and anything not owed."""
        done, refused = 0, []
        for charge in queryset:
            try:
                services.settle_charge(charge=charge, to=ChargeStatus.PAID, operator=request.user, window="财务处")
                done += 1
            except CardRuleError as exc:
                refused.append(f"#{charge.pk}: {' '.join(exc.messages)}")
        if done:
            messages.success(request, _("已登记缴费 %(n)d 笔") % {"n": done})
        for line in refused:
            messages.error(request, line)

    date_hierarchy = "at"
    list_select_related = ("operator", "card")
    change_list_template = "admin/cards/feecharge_changelist.html"

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_view)
        return [path("export/", export, name="cards_feecharge_export"), *super().get_urls()]

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """对账导出: ?from=YYYY-MM-DD&to=YYYY-MM-DD&format=xlsx|csv (default: the last 7 days)."""
        today = timezone.localdate()
        try:
            start = date.fromisoformat(request.GET.get("from") or str(today - timedelta(days=6)))
            end = date.fromisoformat(request.GET.get("to") or str(today))
        except ValueError:
            return HttpResponse(_("日期格式应为 YYYY-MM-DD"), status=400)
        result = ledger.ledger(start=start, end=end)
        if request.GET.get("format") == "csv":
            body, kind, ext = (ledger.to_csv(ledger.ITEM_HEADERS, result.items), "text/csv; charset=utf-8", "csv")
        else:
            body, ext = ledger.to_xlsx(result), "xlsx"
            kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        response = HttpResponse(body, content_type=kind)
        response["Content-Disposition"] = f'attachment; filename="fees-{start}-{end}.{ext}"'
        return response


@admin.register(FeePolicy)
class FeePolicyAdmin(admin.ModelAdmin):
    list_display = ("replacement_fee", "cap", "updated_at")

    def has_add_permission(self, request):
        return not FeePolicy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


__all__ = ["import_admin", "reconcile_admin"]  # registers the import and reconciliation pages
