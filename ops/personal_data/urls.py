from django.urls import path

from ops.personal_data import views

urlpatterns = [
    path("requests/", views.request_list, name="privacy-requests"),
    path("requests/new/", views.new_request, name="privacy-request-new"),
    path("requests/<int:request_id>/", views.detail, name="privacy-request"),
    path("requests/<int:request_id>/approve/", views.approve, name="privacy-request-approve"),
    path("requests/<int:request_id>/reject/", views.reject, name="privacy-request-reject"),
    path("requests/<int:request_id>/review/", views.review, name="privacy-request-review"),
    path("requests/<int:request_id>/revoke/", views.revoke, name="privacy-request-revoke"),
    path("requests/<int:request_id>/basis/", views.basis, name="privacy-request-basis"),
    path("holders/<int:holder_id>/", views.holder, name="privacy-holder"),
    path("holders/<int:holder_id>/passages/", views.passages, name="privacy-holder-passages"),
]
