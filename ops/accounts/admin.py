"""Operators are managed as users with an inline role and scope. Only NIC administrators may
see or change accounts and groups (R-SEC-3), and every change to what an account may do is
audited with its before and after (``ops.accounts.permission_changes``); the admin's own log entry is
audited too (``ops.accounts.audit_hooks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.utils.translation import gettext_lazy as _

from ops.accounts import permission_changes
from ops.accounts.models import Operator


class OperatorInline(admin.StackedInline):
    model = Operator
    can_delete = False
    filter_horizontal = ("buildings",)
    readonly_fields = ("sign_in",)  # how the account was made (issue 16): a fact, not a grant


if TYPE_CHECKING:  # the mixin's super() is the ModelAdmin it is mixed into
    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object


class NicOnly(_AdminBase):
    """Account and group administration is NIC's alone, whatever Django permissions say."""

    def has_module_permission(self, request: Any) -> bool:
        return permission_changes.may_grant(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return permission_changes.may_grant(request.user) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: Any) -> bool:
        return permission_changes.may_grant(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return permission_changes.may_grant(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return permission_changes.may_grant(request.user) and super().has_delete_permission(request, obj)


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class OperatorUserAdmin(NicOnly, UserAdmin):
    inlines = [OperatorInline]
    list_display = ("username", "first_name", "role", "is_active", "last_login")
    list_select_related = ("operator",)

    @admin.display(description=_("角色"))
    def role(self, obj: User) -> str:
        operator = getattr(obj, "operator", None)
        return operator.get_role_display() if operator else "—"

    def get_readonly_fields(self, request: Any, obj: Any = None) -> tuple[str, ...]:
        # only a superuser can make a superuser: a NIC admin cannot raise their own rights
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else (*fields, "is_superuser")

    def save_model(self, request: Any, obj: User, form: Any, change: bool) -> None:
        request._grants_before = permission_changes.snapshot(User.objects.get(pk=obj.pk)) if change else {}
        super().save_model(request, obj, form, change)

    def save_related(self, request: Any, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # groups, inline role and scope
        permission_changes.audit_change(
            actor=request.user, user=form.instance, before=getattr(request, "_grants_before", {}), basis="admin"
        )


@admin.register(Group)
class AuditedGroupAdmin(NicOnly, GroupAdmin):
    """A group's permissions change what every member may do: NIC only, and the permissions
    added and removed are audited."""

    def save_model(self, request: Any, obj: Group, form: Any, change: bool) -> None:
        request._group_before = permission_changes.group_permissions(obj) if change else []
        super().save_model(request, obj, form, change)

    def save_related(self, request: Any, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        permission_changes.audit_group_change(
            actor=request.user, group=form.instance, before=getattr(request, "_group_before", []), basis="admin"
        )
