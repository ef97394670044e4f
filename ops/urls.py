from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

from ops import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/logout/confirm/", views.logout_confirm, name="logout-confirm"),
    path("live/gates", RedirectView.as_view(url="/live/gates/")),
    path("live/cards", RedirectView.as_view(url="/live/cards/")),
    path("live/devices", RedirectView.as_view(url="/live/devices/")),
    path("live/dorm", RedirectView.as_view(url="/live/dorm/")),
    path("i18n/", include("django.conf.urls.i18n")),
    # one login page for everything (the admin's own would bypass our login handling)
    path("admin/login/", RedirectView.as_view(url="/accounts/login/", query_string=True)),
    path("admin/", admin.site.urls),
    path("api/", include("ops.api.urls")),
    path("alerts/", include("ops.alerts.urls")),
    path("privacy/", include("ops.personal_data.urls")),
    path("photos/holders/<int:holder_id>.jpg", views.holder_photo, name="holder-photo"),
]

admin.site.site_header = _("校园一卡通运营平台 · 管理后台")
admin.site.site_title = _("校园一卡通")
admin.site.index_title = _("卡务与设备管理")
