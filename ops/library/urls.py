from django.urls import path

from ops.library import views

urlpatterns = [
    path("", views.workbench, name="library-workbench"),
]
