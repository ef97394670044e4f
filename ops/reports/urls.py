from django.urls import path

from ops.reports import views

urlpatterns = [
    path("", views.page, name="reports"),
    path("xlsx", views.download, name="reports-xlsx"),
    path("plotly.min.js", views.plotly_js, name="reports-plotly"),
]
