"""Finance's bank reconciliation pages (R-FEE-3; issue 18, Build 3), in the admin, so they sit
on Finance's workbench: import a statement, see the day matched and unmatched on both sides,
close the day (per window or whole), export the result for the bank audit. The rules are in
:mod:`ops.registry.lifecycle.reconciliation`; these views only call it."""

from __future__ import annotations

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ops.admin_kit import ReadOnlyAdmin
from ops.registry.lifecycle import importing, reconciliation
from ops.registry.lifecycle.choices import PayChannel
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import BankStatement, ClosedDay


class StatementForm(forms.Form):
    day = forms.DateField(label=_("对账日期"))
    channel = forms.ChoiceField(label=_("支付渠道"), choices=PayChannel.choices)
    file = forms.FileField(label=_("对账单文件"), help_text=_("银行或支付平台导出的 CSV 或 XLSX"))
    reference_column = forms.CharField(
        label=_("流水号列名（可选）"),
        required=False,
        max_length=40,
        help_text=_("不填则识别：交易流水号、流水号、商户订单号…"),
    )
    amount_column = forms.CharField(
        label=_("金额列名（可选）"), required=False, max_length=40, help_text=_("不填则识别：交易金额、金额…")
    )


class CloseForm(forms.Form):
    window = forms.CharField(label=_("收费窗口"), required=False, max_length=40, help_text=_("空白表示全部窗口"))
    note = forms.CharField(
        label=_("结账说明"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )


def _require_view(request: HttpRequest) -> None:
    if not request.user.has_perm("cards.view_bankstatement"):
        raise PermissionDenied(gettext("只有计划财务处可以查看银行对账"))


def _day(request: HttpRequest) -> date:
    text = request.GET.get("day") or ""
    if not text:
        return timezone.localdate()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CardRuleError(gettext("日期格式应为 YYYY-MM-DD")) from None


@admin.register(BankStatement)
class BankStatementAdmin(ReadOnlyAdmin):
    list_display = ("day", "channel", "filename", "rows", "total", "imported_by", "imported_at")
    list_filter = ("channel",)
    date_hierarchy = "day"
    change_list_template = "admin/cards/bankstatement_changelist.html"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("upload/", wrap(self.upload_view), name="cards_bankstatement_upload"),
            path("reconcile/", wrap(self.reconcile_view), name="cards_bankstatement_reconcile"),
            path("reconcile/export/", wrap(self.export_view), name="cards_bankstatement_export"),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        _require_view(request)
        form = StatementForm(request.POST or None, request.FILES or None, initial={"day": timezone.localdate()})
        error = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                statement = reconciliation.import_statement(
                    day=form.cleaned_data["day"],
                    channel=form.cleaned_data["channel"],
                    filename=upload.name,
                    data=importing.read_upload(upload),  # refused by its size first (issue 20)
                    operator=request.user,
                    columns={
                        "reference": form.cleaned_data["reference_column"],
                        "amount": form.cleaned_data["amount_column"],
                    },
                )
            except CardRuleError as exc:
                error = " ".join(exc.messages)
            else:
                messages.success(request, gettext("已导入对账单：%(n)d 笔交易") % {"n": statement.rows})
                url = reverse("admin:cards_bankstatement_reconcile")
                return HttpResponseRedirect(f"{url}?day={statement.day.isoformat()}")
        return render(
            request,
            "admin/cards/statement_upload.html",
            {
                "form": form,
                "rule_error": error,
                "title": gettext("导入银行对账单"),
                **self.admin_site.each_context(request),
            },
        )

    def reconcile_view(self, request: HttpRequest) -> HttpResponse:
        _require_view(request)
        error = None
        try:
            day = _day(request)
        except CardRuleError as exc:
            day, error = timezone.localdate(), " ".join(exc.messages)
        form = CloseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                reconciliation.close_day(
                    day=day, window=form.cleaned_data["window"], note=form.cleaned_data["note"], operator=request.user
                )
            except CardRuleError as exc:
                error = " ".join(exc.messages)
            else:
                messages.success(request, gettext("%(day)s 已结账") % {"day": day.isoformat()})
                return HttpResponseRedirect(f"{reverse('admin:cards_bankstatement_reconcile')}?day={day.isoformat()}")
        result = reconciliation.reconcile(day)
        return render(
            request,
            "admin/cards/reconcile.html",
            {
                "day": day,
                "result": result,
                "unstated": [(PayChannel(c).label if c else gettext("未登记"), n) for c, n in result.unstated.items()],
                "form": form,
                "rule_error": error,
                "title": gettext("银行对账"),
                **self.admin_site.each_context(request),
            },
        )

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """对账结果导出（银行审计）: ?day=YYYY-MM-DD&format=xlsx|csv."""
        _require_view(request)
        try:
            day = _day(request)
        except CardRuleError as exc:
            return HttpResponse(" ".join(exc.messages), status=400)
        result = reconciliation.reconcile(day)
        if request.GET.get("format") == "csv":
            body, kind, ext = reconciliation.to_csv(result), "text/csv; charset=utf-8", "csv"
        else:
            body, ext = reconciliation.to_xlsx(result), "xlsx"
            kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        response = HttpResponse(body, content_type=kind)
        response["Content-Disposition"] = f'attachment; filename="reconciliation-{day.isoformat()}.{ext}"'
        return response


@admin.register(ClosedDay)
class ClosedDayAdmin(ReadOnlyAdmin):
    list_display = ("day", "window", "closed_by", "closed_at", "note")
    date_hierarchy = "day"
    exclude = ("starts_at", "ends_at")
