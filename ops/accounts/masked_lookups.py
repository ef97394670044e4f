"""The admin's filters and search box never probe masked personal data (R-SEC-2; issue 20, item 1).

A change list answers "N 持卡人" to any lookup on a local field (Django allows them all), so
``?citizen_id__startswith=4406`` asked digit by digit recovers a masked citizen ID, phone or
name — the admin shows them masked, the count does not. The masked fields of each model are
listed here, once; an admin of such a model uses :class:`MaskedLookupsAdmin`, which refuses a
filter on them (a 400 with the reason, audited) and leaves them out of its search box. No role
filters on them: a person's full data is looked up only under a grant (个人数据查询).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.views.main import IGNORED_PARAMS
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from ops.audit import services as audit

# model label → fields shown masked (or not at all) to an operator without a grant. Model labels,
# not classes: the registry sits above this room.
MASKED_FIELDS: dict[str, frozenset[str]] = {
    "campus.cardholder": frozenset({"name", "citizen_id", "phone"}),
    # a person's passages: the card is shown masked, its search is audited (AccessEventAdmin)
    "campus.accessevent": frozenset({"card", "card_uid"}),
    # the stored import plan holds the lists' full citizen IDs
    "cards.importbatch": frozenset({"plan"}),
}
# query parameters of a change list that are not lookups on a field
NOT_LOOKUPS = frozenset(IGNORED_PARAMS) | {"_changelist_filters"}


def masked_path(model: type[Model], lookup: str) -> str | None:
    """``"label.field"`` if ``lookup`` (``holder__citizen_id__startswith``, ``phone__regex``,
    ``card_id``…) reaches a masked field, following relations; None if it does not."""
    opts = model._meta
    for part in lookup.split("__"):
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            return None  # a transform or lookup name (startswith, regex…): the path ends here
        if field.name in MASKED_FIELDS.get(opts.label_lower, ()):
            return f"{opts.label_lower}.{field.name}"
        related = getattr(field, "related_model", None)
        if not field.is_relation or related is None or isinstance(related, str):
            return None
        opts = related._meta
    return None


def search_path(term: str) -> str:
    """A ``search_fields`` entry without its prefix (``^number``, ``=code``, ``@note``)."""
    return term.lstrip("^=@")


class MaskedLookupsAdmin(admin.ModelAdmin):
    """Base of every admin whose model has masked fields (:data:`MASKED_FIELDS`)."""

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        """Belt and braces: Django's change list asks this for each filter (a refusal → 400)."""
        if masked_path(self.model, lookup):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [f for f in super().get_search_fields(request) if not masked_path(self.model, search_path(f))]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        refused = sorted(key for key in request.GET if key not in NOT_LOOKUPS and masked_path(self.model, key))
        if not refused:
            return super().changelist_view(request, extra_context)
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)  # Django's own 403
        # the attempt is on the record (R-SEC-5); the values tried are not (they may be the data)
        audit.record(
            actor=request.user,
            action="admin.lookup_refused",
            object_type=self.model._meta.label_lower,
            object_id="",
            basis="admin",
            data={"lookups": refused},
        )
        fields = dict.fromkeys(_label(path) for key in refused if (path := masked_path(self.model, key)))
        message = _(
            "个人信息保护：不能按“%(fields)s”筛选或查找（这些信息只以脱敏形式显示）；如确需查询，请提交个人数据查询申请"
        ) % {"fields": "、".join(fields)}
        return TemplateResponse(
            request,
            "admin/base_site.html",
            {"title": message, **self.admin_site.each_context(request)},
            status=400,
        )


def _label(path: str) -> str:
    """``"campus.cardholder.citizen_id"`` → 身份证号 (the field's name, in the active language)."""
    label, name = path.rsplit(".", 1)
    return str(apps.get_model(label)._meta.get_field(name).verbose_name)
