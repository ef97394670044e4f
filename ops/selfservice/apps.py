from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SelfServiceConfig(AppConfig):
    name = "ops.selfservice"
    label = "selfservice"
    verbose_name = _("持卡人自助服务")
