from django.urls import path

from ops.alerts import views

urlpatterns = [
    path("<int:alert_id>/", views.detail, name="alert-detail"),
    path("<int:alert_id>/acknowledge", views.acknowledge, name="alert-acknowledge"),
    path("<int:alert_id>/assign", views.assign, name="alert-assign"),
    path("<int:alert_id>/resolve", views.resolve, name="alert-resolve"),
    path("<int:alert_id>/ticket", views.ticket, name="alert-ticket"),
]
