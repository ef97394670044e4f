from django.urls import path

from ops.muster import views

urlpatterns = [
    path("", views.muster_list, name="muster-list"),
    path("start/", views.start, name="muster-start"),
    path("<int:muster_id>/", views.detail, name="muster-detail"),
    path("<int:muster_id>/end/", views.end, name="muster-end"),
    path("<int:muster_id>/export.xlsx", views.export_xlsx, name="muster-export"),
]
