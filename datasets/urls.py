from django.urls import path

from datasets import views, views_upload

app_name = "datasets"
urlpatterns = [
    path("datasets/", views.dataset_list, name="list"),
    path("datasets/upload/", views_upload.dataset_upload, name="upload"),
    path("datasets/import/", views.dataset_import, name="import"),
    path("datasets/<uuid:pk>/", views.dataset_detail, name="detail"),
    path("datasets/<uuid:pk>/status/", views.dataset_status, name="status"),
    path("datasets/<uuid:pk>/delete/", views.dataset_delete, name="delete"),
    path("datasets/<uuid:pk>/revalidate/", views.dataset_revalidate, name="revalidate"),
    path("datasets/<uuid:pk>/download/", views.dataset_download, name="download"),
]
