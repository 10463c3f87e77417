from django.urls import path

from training_files import views
from training_files.views_exports import urlpatterns as export_urlpatterns

app_name = "training_files"
urlpatterns = [
    path("training-files/", views.training_file_list, name="list"),
    path("training-files/from-selection/", views.create_from_selection, name="create_from_selection"),
    path("training-files/add-selection/", views.add_from_selection, name="add_from_selection"),
    path("training-files/<uuid:pk>/", views.training_file_detail, name="detail"),
    path("training-files/<uuid:pk>/members/remove/", views.members_remove, name="members_remove"),
    path("training-files/<uuid:pk>/versions/<int:number>/retry/", views.version_retry, name="version_retry"),
    path("training-files/<uuid:pk>/versions/<int:number>/download/<str:fmt>/", views.download, name="download"),
    *export_urlpatterns,
]
