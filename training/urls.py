from django.urls import path

from training import views, views_configure, views_costs, views_models

app_name = "training"
urlpatterns = [
    path("training/", views.job_list, name="job_list"),
    path("training/new/", views_configure.job_configure, name="configure"),
    path("training/estimate/", views_configure.job_estimate, name="estimate"),
    path("training/<uuid:pk>/", views.job_detail, name="job_detail"),
    path("training/<uuid:pk>/live/", views.job_live, name="job_live"),
    path("training/<uuid:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("models/", views_models.model_list, name="model_list"),
    path("models/<uuid:pk>/", views_models.model_detail, name="model_detail"),
    path("models/<uuid:pk>/files/<str:name>/", views_models.model_file_download, name="model_file_download"),
    path("costs/", views_costs.costs, name="costs"),
    path("costs.csv", views_costs.costs_csv, name="costs_csv"),
]
