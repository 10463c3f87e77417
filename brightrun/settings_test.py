"""Test overlay: the real settings, with fast hashing and a fixed secret."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")

from brightrun.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
SESSION_COOKIE_SECURE = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
CSRF_COOKIE_SECURE = False
STATIC_ROOT = None  # nothing is collected in tests; WhiteNoise serves from the finders
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Tests never share the filesystem broker's folders with a `make run` on the same checkout.
if CELERY_BROKER_URL.startswith("filesystem"):  # noqa: F405
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        key: value.replace(str(VAR_DIR / "celery"), str(VAR_DIR / "test-celery"))  # noqa: F405
        if isinstance(value, str)
        else value
        for key, value in CELERY_BROKER_TRANSPORT_OPTIONS.items()  # noqa: F405
    }
LOGGING["loggers"]["django.request"] = {"level": "ERROR"}  # noqa: F405 - 4xx are expected in tests
