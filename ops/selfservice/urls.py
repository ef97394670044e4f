from django.urls import path

from ops.selfservice import views

app_name = "selfservice"
urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("sso/", views.sso, name="sso"),  # the campus CAS server, when configured
    path("logout/", views.logout, name="logout"),
    path("loss/", views.loss, name="loss"),
    path("passages/", views.passages, name="passages"),
]
