from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

from ops import views
from ops.accounts import views as accounts_views
from ops.metrics import views as metrics

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),  # Prometheus, with a token (issue 16)
    path("accounts/login/", accounts_views.LoginView.as_view(), name="login"),
    # campus single sign-on (issue 16); its POST is the CAS server's single-logout call
    path("accounts/cas/login/", accounts_views.CASLoginView.as_view(), name="cas_ng_login"),
    path("accounts/logout/", accounts_views.LogoutView.as_view(), name="logout"),
    path("accounts/logout/confirm/", views.logout_confirm, name="logout-confirm"),
    path("live/gates", RedirectView.as_view(url="/live/gates/")),
    path("live/cards", RedirectView.as_view(url="/live/cards/")),
    path("live/devices", RedirectView.as_view(url="/live/devices/")),
    path("live/dorm", RedirectView.as_view(url="/live/dorm/")),
    path("live/muster", RedirectView.as_view(url="/live/muster/")),
    # what the desks' guard refuses, and any other /live/ path: the project's 403/404 pages (issue 19)
    re_path(r"^live/(?P<rest>.*)$", views.live_refused),
    path("i18n/", include("django.conf.urls.i18n")),
    # one login page for everything (the admin's own would bypass our login handling)
    path("admin/login/", RedirectView.as_view(url="/accounts/login/", query_string=True)),
    path("admin/", admin.site.urls),
    path("api/", include("ops.api.urls")),
    path("alerts/", include("ops.alerts.urls")),
    path("privacy/", include("ops.personal_data.urls")),
    path("muster/", include("ops.muster.urls")),  # emergency roll calls (issue 17)
    path("emergency/", include("ops.registry.emergency.urls")),  # lockdown, unlock-all (issue 17, Build 2)
    path("devices/requests/", include("ops.registry.approvals.urls")),  # device approvals (issue 18, Build 2)
    path("passback/", include("ops.registry.passback.urls")),  # forgive anti-passback (issue 17, Build 5)
    path("library/", include("ops.library.urls")),  # the Library's workbench (issue 18, Build 5)
    path("repairs/", include("ops.alerts.repair_urls")),  # repair requests and queue (issue 18, Build 1)
    path("me/", include("ops.selfservice.urls")),  # cardholders' self-service (issue 18, Build 6)
    path("reports/", include("ops.reports.urls")),  # reports for leadership (issue 18, Build 4)
    path("photos/holders/<int:holder_id>.jpg", views.holder_photo, name="holder-photo"),
]

admin.site.site_header = _("校园一卡通运营平台 · 管理后台")
admin.site.site_title = _("校园一卡通")
admin.site.index_title = _("卡务与设备管理")
