from django.urls import path

from ops.registry.approvals import views

urlpatterns = [
    path("", views.request_list, name="device-requests"),
    path("install/", views.install, name="device-request-install"),
    path("change/", views.change, name="device-request-change"),
    path("<int:request_id>/approve/", views.approve, name="device-request-approve"),
    path("<int:request_id>/reject/", views.reject, name="device-request-reject"),
]
