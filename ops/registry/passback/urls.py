from django.urls import path

from ops.registry.passback import views

urlpatterns = [
    path("", views.zones, name="passback-zones"),
    path("forgive/", views.forgive, name="passback-forgive"),
]
