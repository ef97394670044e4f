"""django-axes (login lockout, R-SEC-1) under a Chinese name in the admin (issue 19, item 6: the
admin showed "AXES"). Its models' and fields' labels come from the Simplified Chinese catalogue
``ops/locale/zh_Hans/LC_MESSAGES/django.po`` (axes ships none)."""

from axes.apps import AppConfig as AxesAppConfig
from django.utils.translation import gettext_lazy as _


class AxesConfig(AxesAppConfig):
    verbose_name = _("登录锁定")
