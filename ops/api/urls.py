from django.urls import path, re_path

from ops.api import dorms, index, personal_data, views

urlpatterns = [
    path("", index.index, name="api-index"),  # issue 19, item 12: an index, not an HTML 404
    path("schema/", index.schema_view, name="api-schema"),
    path("docs/", index.docs, name="api-docs"),  # Swagger UI, for a logged-in operator
    path("v1/imports/", views.import_preview, name="api-import"),
    path("v1/imports/<int:pk>/", views.import_detail, name="api-import-detail"),
    path("v1/imports/<int:pk>/apply/", views.import_apply, name="api-import-apply"),
    path("v1/explain/", views.explain_view, name="api-explain"),
    path("v1/dorms/<str:code>/", dorms.dorm_summary, name="api-dorm"),
    path("v1/privacy/requests/", personal_data.file_request, name="api-privacy-requests"),
    path("v1/privacy/requests/<int:pk>/", personal_data.request_detail, name="api-privacy-request"),
    path("v1/privacy/requests/<int:pk>/approve/", personal_data.approve, name="api-privacy-approve"),
    path("v1/privacy/requests/<int:pk>/reject/", personal_data.reject, name="api-privacy-reject"),
    path("v1/privacy/requests/<int:pk>/review/", personal_data.review, name="api-privacy-review"),
    path("v1/privacy/requests/<int:pk>/revoke/", personal_data.revoke, name="api-privacy-revoke"),
    path("v1/privacy/holders/<int:holder_id>/", personal_data.holder, name="api-privacy-holder"),
    path("v1/privacy/holders/<int:holder_id>/passages/", personal_data.passages, name="api-privacy-holder-passages"),
    path("v1/cards/", views.issue, name="api-issue"),
    path("v1/cards/<str:uid>/", views.card_detail, name="api-card"),
    path("v1/cards/<str:uid>/loss/", views.loss, name="api-loss"),
    path("v1/cards/<str:uid>/found/", views.found, name="api-found"),
    path("v1/cards/<str:uid>/replace/", views.replace, name="api-replace"),
    path("v1/cards/<str:uid>/cancel/", views.cancel, name="api-cancel"),
    path("v1/cards/<str:uid>/extend/", views.extend, name="api-extend"),
    path("v1/cards/<str:uid>/grants/", views.grant, name="api-grant"),
    path("v1/cards/<str:uid>/grants/<int:pk>/revoke/", views.revoke_grant, name="api-revoke-grant"),
    re_path(r"^(?P<rest>.*)$", index.not_found),  # last: an unknown /api/ path answers in JSON
]
