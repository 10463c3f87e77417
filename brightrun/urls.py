from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from brightrun import file_views, views
from brightrun.ratelimit_login import RateLimitedLoginView
from brightrun.rest.views import NotificationViewSet
from conversations.api import generation as generation_api
from conversations.api import review as review_api
from conversations.api import scaffolding as scaffolding_api
from datasets import api as datasets_api
from training import api as training_api
from training import api_callback as training_callback_api
from training import api_catalogue
from training_files import api as training_files_api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False  # JSON only
router.register("notifications", NotificationViewSet, basename="notification")
scaffolding_api.register(router)
generation_api.register(router)
review_api.register(router)
training_files_api.register(router)
datasets_api.register(router)
api_catalogue.register(router)
training_api.register(router)

notification_patterns = (
    [
        path("", views.notification_list, name="list"),
        path("bell/", views.notification_bell, name="bell"),
        path("read-all/", views.notification_mark_all_read, name="mark_all_read"),
        path("<uuid:pk>/read/", views.notification_mark_read, name="mark_read"),
    ],
    "notifications",
)
account_patterns = (
    [
        path("tokens/", views.token_list, name="tokens"),
        path("tokens/new/", views.token_create, name="token_create"),
        path("tokens/<uuid:pk>/revoke/", views.token_revoke, name="token_revoke"),
    ],
    "accounts",
)
file_patterns = (
    [
        path("download/<str:token>/", file_views.signed_download, name="download"),
        path("upload/<str:token>/", file_views.signed_upload, name="upload"),
        path("put/<str:token>/", file_views.signed_put, name="put"),
    ],
    "files",
)

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", RateLimitedLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("notifications/", include(notification_patterns)),
    path("account/", include(account_patterns)),
    path("files/", include(file_patterns)),
    path("", include("conversations.urls")),
    path("", include("training_files.urls")),
    path("", include("datasets.urls")),
    path("", include("training.urls")),
    path("admin/", admin.site.urls),
    *api_catalogue.urlpatterns(),  # before the router: its training-jobs detail route would match "estimate"
    path("api/v1/", include(training_callback_api.urlpatterns())),  # before the router's training-jobs routes
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

handler404 = "brightrun.rest.handlers.page_not_found"
handler500 = "brightrun.rest.handlers.server_error"
