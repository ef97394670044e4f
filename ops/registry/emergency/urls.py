from django.urls import path

from ops.registry.emergency import views

urlpatterns = [
    path("", views.emergency_list, name="emergency-list"),
    path("start/", views.start, name="emergency-start"),
    path("<int:mode_id>/approve/", views.approve, name="emergency-approve"),
    path("<int:mode_id>/end/", views.end, name="emergency-end"),
]
