from django.urls import path

from ops.alerts import repair_views as views

urlpatterns = [
    path("", views.queue, name="repair-queue"),
    path("new", views.file_request, name="repair-new"),
    path("<int:ticket_id>/", views.detail, name="repair-detail"),
    path("<int:ticket_id>/step", views.step, name="repair-step"),
    path("<int:ticket_id>/photo", views.photo, name="repair-photo"),
]
