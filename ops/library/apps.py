from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LibraryConfig(AppConfig):
    """The library's link to the card system (issue 18, Build 5; R-CARD-2): the SIP2 server
    (`campuscard sip2`) and the Library's workbench. No models: its traffic counts live in Redis."""

    name = "ops.library"
    label = "library"
    verbose_name = _("图书馆")
