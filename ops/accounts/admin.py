"""Operators are managed as users with an inline role and scope (granted by NIC, R-SEC-3)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.utils.translation import gettext_lazy as _

from ops.accounts.models import Operator


class OperatorInline(admin.StackedInline):
    model = Operator
    can_delete = False
    filter_horizontal = ("buildings",)


admin.site.unregister(User)


@admin.register(User)
class OperatorUserAdmin(UserAdmin):
    inlines = [OperatorInline]
    list_display = ("username", "first_name", "role", "is_active", "last_login")
    list_select_related = ("operator",)

    @admin.display(description=_("角色"))
    def role(self, obj: User) -> str:
        operator = getattr(obj, "operator", None)
        return operator.get_role_display() if operator else "—"
