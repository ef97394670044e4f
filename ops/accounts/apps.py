from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "ops.accounts"
    label = "accounts"
    verbose_name = _("操作员与权限")

    def ready(self) -> None:
        # Django's place for connecting signals: the hooks import models, so they load only
        # once the app registry is ready (docs/architecture.md, "imports inside functions").
        from ops.accounts import audit_hooks

        audit_hooks.connect_lockout()
        audit_hooks.connect_cas_logout()
