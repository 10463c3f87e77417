"""Django settings for Bright Run: one file, every deploy difference from the environment.

Defaults run on one machine with nothing installed (SQLite, local files, a filesystem
Celery broker). PostgreSQL, Redis and S3 are switched on with ``DATABASE_URL``,
``CELERY_BROKER_URL`` and ``STORAGE_BACKEND=s3``. The README lists every variable.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from botocore.config import Config as BotocoreConfig
from django.core.exceptions import ImproperlyConfigured

from brightrun.env import env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("BRIGHTRUN_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (or use SECRET_KEY_FILE).")
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env_str("SITE_URL", "http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "brightrun",
    "conversations",
    "training_files",
    "datasets",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "brightrun.security_headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "brightrun.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "brightrun.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "brightrun.urls"
WSGI_APPLICATION = "brightrun.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "brightrun.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'brightrun.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (shared state such as "a regeneration is running"; Redis when several machines run) ---
CACHE_URL = env_str("CACHE_URL")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# Failed sign-ins per username in the window (five times as many per client address); see brightrun/ratelimit_login.py.
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 10, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)
# Four-eyes rule for reviews (SPEC §2): a reviewer may not approve their own conversation.
ALLOW_SELF_REVIEW = env_bool("ALLOW_SELF_REVIEW", False)

# --- I18N / static --------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Storage --------------------------------------------------------------------------
STORAGE_BACKEND = env_choice("STORAGE_BACKEND", "local", {"local", "s3"})
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
SIGNED_URL_TTL_SECONDS = env_int("SIGNED_URL_TTL_SECONDS", 3600, minimum=1)
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 512 * 1024 * 1024, minimum=1)
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME", "brightrun")
AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None
# Address that browsers and remote workers use for signed URLs, if it differs from the nodes' one.
AWS_S3_PUBLIC_ENDPOINT_URL = env_str("AWS_S3_PUBLIC_ENDPOINT_URL") or None
AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME", "us-east-1")
AWS_S3_ADDRESSING_STYLE = env_choice("AWS_S3_ADDRESSING_STYLE", "auto", {"auto", "path", "virtual"})
AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID") or None
AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY") or None
# An S3 outage fails a request in seconds: connect and read timeouts, and a bounded number of attempts (botocore's
# "standard" retry mode: connection errors, throttling and 5xx, with backoff) instead of its minutes-long defaults.
AWS_S3_CONNECT_TIMEOUT = env_float("AWS_S3_CONNECT_TIMEOUT", 5.0)
AWS_S3_READ_TIMEOUT = env_float("AWS_S3_READ_TIMEOUT", 30.0)
AWS_S3_MAX_ATTEMPTS = env_int("AWS_S3_MAX_ATTEMPTS", 3, minimum=1)

_STATIC_STORAGE = {
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
    if DEBUG
    else "whitenoise.storage.CompressedManifestStaticFilesStorage"
}
if STORAGE_BACKEND == "s3":
    _DEFAULT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": AWS_S3_ENDPOINT_URL,
            "region_name": AWS_S3_REGION_NAME,
            "access_key": AWS_ACCESS_KEY_ID,
            "secret_key": AWS_SECRET_ACCESS_KEY,
            # With a client configuration django-storages ignores its own signature/addressing options.
            "client_config": BotocoreConfig(
                signature_version="s3v4",
                s3={"addressing_style": None if AWS_S3_ADDRESSING_STYLE == "auto" else AWS_S3_ADDRESSING_STYLE},
                connect_timeout=AWS_S3_CONNECT_TIMEOUT,
                read_timeout=AWS_S3_READ_TIMEOUT,
                retries={"mode": "standard", "max_attempts": AWS_S3_MAX_ATTEMPTS},
            ),
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": SIGNED_URL_TTL_SECONDS,
            "file_overwrite": False,
        },
    }
else:
    _DEFAULT_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
STORAGES = {"default": _DEFAULT_STORAGE, "staticfiles": _STATIC_STORAGE}


# --- Datasets (SPEC §9) ---------------------------------------------------------------
# Largest dataset file accepted (upload policy, signed local upload, validator).
DATASET_MAX_BYTES = env_int("DATASET_MAX_BYTES", 512 * 1024 * 1024, minimum=1)
# Fewer valid examples than this is a TOO_FEW_EXAMPLES error.
DATASET_MIN_EXAMPLES = env_int("DATASET_MIN_EXAMPLES", 10, minimum=1)
# Share of examples (by SHA-256 of their normalized content) held out for validation.
DATASET_VALIDATION_PERCENT = env_int("DATASET_VALIDATION_PERCENT", 10, minimum=0, maximum=50)
# A dataset left in `uploading` this long is expired; one `validating` without progress this long is re-enqueued.
DATASET_UPLOAD_EXPIRY_HOURS = env_int("DATASET_UPLOAD_EXPIRY_HOURS", 24, minimum=1)
DATASET_VALIDATION_STUCK_MINUTES = env_int("DATASET_VALIDATION_STUCK_MINUTES", 15, minimum=1)
DATASET_VALIDATION_MAX_ATTEMPTS = env_int("DATASET_VALIDATION_MAX_ATTEMPTS", 3, minimum=1)
# Files of soft-deleted datasets are removed from storage after this many days.
DATASET_DELETED_RETENTION_DAYS = env_int("DATASET_DELETED_RETENTION_DAYS", 30, minimum=0)

# --- Training files (SPEC §7) -----------------------------------------------------------
# A building version whose worker has not refreshed its claim (heartbeat every third of this) for this long, or
# that no worker took this long after it was enqueued, is re-enqueued by the sweeper; after
# TRAINING_FILE_BUILD_MAX_ATTEMPTS started builds it fails with `build_lost`.
TRAINING_FILE_BUILD_STALE_SECONDS = env_int("TRAINING_FILE_BUILD_STALE_SECONDS", 900, minimum=3)
TRAINING_FILE_BUILD_MAX_ATTEMPTS = env_int("TRAINING_FILE_BUILD_MAX_ATTEMPTS", 3, minimum=1)

# --- Celery ---------------------------------------------------------------------------
CELERY_QUEUES = ("default", "generation", "validation", "training")
_CELERY_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = (
    {
        "data_folder_in": str(_CELERY_DIR / "queue"),
        "data_folder_out": str(_CELERY_DIR / "queue"),
        "control_folder": str(_CELERY_DIR / "control"),
        "processed_folder": str(_CELERY_DIR / "processed"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    # Redis: a message not acknowledged within this window is redelivered. It must exceed
    # the longest task (training jobs), or a long task would be delivered twice.
    else {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 8 * 3600, minimum=60)}
)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "conversations.tasks.generation_*": {"queue": "generation"},
    "conversations.tasks.conversation_regenerate_task": {"queue": "generation"},
    "datasets.tasks.*": {"queue": "validation"},
    "training.tasks.training_job_run*": {"queue": "training"},
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 1, minimum=1)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
WORKER_HEARTBEAT_MAX_AGE_SECONDS = env_int("WORKER_HEARTBEAT_MAX_AGE_SECONDS", 180, minimum=10)

# --- Training (SPEC §10) ---------------------------------------------------------------
# Locally built or downloaded base models (the tiny test model lives in TRAINING_MODELS_DIR/tiny-test).
TRAINING_MODELS_DIR = Path(env_str("TRAINING_MODELS_DIR", str(VAR_DIR / "models")))
# Scratch space of the local trainer (datasets splits, checkpoints, adapter before upload).
TRAINING_WORK_DIR = Path(env_str("TRAINING_WORK_DIR", str(VAR_DIR / "training")))
# Model FLOPs utilisation assumed by the estimate (SPEC §10.2).
TRAINING_MFU = env_float("TRAINING_MFU", 0.35)
# Longest a local training task may run (Celery soft limit; the hard limit is 5 minutes later).
TRAINING_TIME_LIMIT_SECONDS = env_int("TRAINING_TIME_LIMIT_SECONDS", 6 * 3600, minimum=60)
_visibility = CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
if _visibility is not None and _visibility <= TRAINING_TIME_LIMIT_SECONDS + 300:
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must exceed TRAINING_TIME_LIMIT_SECONDS + 300, or a long training task would be "
        "delivered to a second worker while the first still runs."
    )
# A preparing or running local job with no sign of life (stage, step, metric) for this long lost its worker: it is
# restarted from the beginning while it has had fewer than TRAINING_MAX_ATTEMPTS runs, then fails (worker_lost).
TRAINING_STALE_SECONDS = env_int("TRAINING_STALE_SECONDS", 30 * 60, minimum=3)
TRAINING_MAX_ATTEMPTS = env_int("TRAINING_MAX_ATTEMPTS", 2, minimum=1)
# Remote (RunPod-serverless style) backend.
TRAINING_REMOTE_ENDPOINT = env_str("TRAINING_REMOTE_ENDPOINT")
TRAINING_REMOTE_API_KEY = env_str("TRAINING_REMOTE_API_KEY")
TRAINING_REMOTE_TIMEOUT_SECONDS = env_float("TRAINING_REMOTE_TIMEOUT_SECONDS", 30.0)
# A remote job without a callback for this long is polled by the beat task.
TRAINING_REMOTE_POLL_AFTER_SECONDS = env_int("TRAINING_REMOTE_POLL_AFTER_SECONDS", 60, minimum=5)
# Signed URLs handed to a remote worker (dataset GETs, artifact PUTs) live this long.
TRAINING_REMOTE_URL_TTL_SECONDS = env_int("TRAINING_REMOTE_URL_TTL_SECONDS", 6 * 3600, minimum=60)

# --- Anthropic ------------------------------------------------------------------------
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_MODEL = env_str("ANTHROPIC_MODEL", "claude-sonnet-4-5-20250929")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL") or None
ANTHROPIC_TIMEOUT_SECONDS = env_float("ANTHROPIC_TIMEOUT_SECONDS", 600.0)
ANTHROPIC_MAX_RETRIES = env_int("ANTHROPIC_MAX_RETRIES", 2, minimum=0)
# A retry-after up to this many seconds is waited for inside the SDK; longer ones reschedule the item.
ANTHROPIC_MAX_INLINE_RETRY_AFTER = env_float("ANTHROPIC_MAX_INLINE_RETRY_AFTER", 60.0)
# Shared by every worker, per model: requests and output tokens in any 60-second window (0 = no limit).
ANTHROPIC_REQUESTS_PER_MINUTE = env_int("ANTHROPIC_REQUESTS_PER_MINUTE", 50, minimum=0)
ANTHROPIC_OUTPUT_TOKENS_PER_MINUTE = env_int("ANTHROPIC_OUTPUT_TOKENS_PER_MINUTE", 80_000, minimum=0)
GENERATION_MAX_TOKENS = env_int("GENERATION_MAX_TOKENS", 16_000, minimum=256)
GENERATION_MAX_ITEMS = env_int("GENERATION_MAX_ITEMS", 10_000, minimum=1)
GENERATION_MAX_ATTEMPTS = env_int("GENERATION_MAX_ATTEMPTS", 3, minimum=1)
# A running item whose heartbeat is older than this is requeued (or failed after the last attempt).
GENERATION_HEARTBEAT_TIMEOUT_SECONDS = env_int("GENERATION_HEARTBEAT_TIMEOUT_SECONDS", 180, minimum=5)
GENERATION_HEARTBEAT_INTERVAL_SECONDS = env_float("GENERATION_HEARTBEAT_INTERVAL_SECONDS", 20.0)
# An item dispatched to the broker but never claimed within this window is dispatched again.
GENERATION_DISPATCH_TIMEOUT_SECONDS = env_int("GENERATION_DISPATCH_TIMEOUT_SECONDS", 600, minimum=5)
# After an item, its task goes on with the batch's next items (no broker round trip), at most this many.
GENERATION_LANE_ITEMS = env_int("GENERATION_LANE_ITEMS", 25, minimum=1)
# Optional LLM judge scoring every enriched conversation (costs one Claude call each; logged).
JUDGE_ENABLED = env_bool("JUDGE_ENABLED", False)
JUDGE_MODEL = env_str("JUDGE_MODEL") or ANTHROPIC_MODEL
JUDGE_MAX_TOKENS = env_int("JUDGE_MAX_TOKENS", 2000, minimum=256)
NEAR_DUPLICATE_THRESHOLD = env_float("NEAR_DUPLICATE_THRESHOLD", 0.8)
GENERATION_LOG_RETENTION_DAYS = env_int("GENERATION_LOG_RETENTION_DAYS", 365, minimum=1)

# --- Retention ------------------------------------------------------------------------
NOTIFICATION_RETENTION_DAYS = env_int("NOTIFICATION_RETENTION_DAYS", 90, minimum=1)

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "brightrun.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["brightrun.rest.parsers.ContractJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "brightrun.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "brightrun.filters.FilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "brightrun.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Bright Run API",
    "DESCRIPTION": "Scaffolding, generation, review, training files, datasets and LoRA training jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Choice sets that share a field name get explicit, stable component names.
    "ENUM_NAME_OVERRIDES": {
        "NotificationPriorityEnum": "brightrun.models.Notification.Priority",
        "BatchPriorityEnum": "conversations.models.GenerationBatch.Priority",
        "BatchStatusEnum": "conversations.models.GenerationBatch.Status",
        "BatchItemStatusEnum": "conversations.models.BatchItem.Status",
        "ConversationStatusEnum": "conversations.models.Conversation.Status",
        "GenerationLogStatusEnum": "conversations.models.GenerationLog.Status",
        "TierEnum": "conversations.models.scaffolding.Tier",
        "ArcTierEnum": "conversations.models.EmotionalArc.ArcTier",
        "ExportFormatEnum": "training_files.models.Export.Format",
        "ExportScopeEnum": "training_files.models.Export.Scope",
        "ExportStatusEnum": "training_files.models.Export.Status",
        "DatasetStatusEnum": "datasets.models.Dataset.Status",
        "DatasetFormatEnum": "datasets.models.Dataset.Format",
        "DatasetSourceEnum": "datasets.models.Dataset.Source",
        "ValidationRunStatusEnum": "datasets.models.DatasetValidation.Status",
        "TrainingJobStatusEnum": "training.models.TrainingJob.Status",
        "TrainingBackendEnum": "training.models.TrainingJob.Backend",
        "TrainingEventKindEnum": "training.models.TrainingEvent.Kind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "brightrun.openapi.add_error_responses",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Security -------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CSP_EXTRA_CONNECT_SRC = tuple(env_str("CSP_EXTRA_CONNECT_SRC", "").split())
SESSION_COOKIE_AGE = int(timedelta(days=14).total_seconds())

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
