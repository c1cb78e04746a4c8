"""Production settings: the base settings hardened, and refusing to start insecurely."""

from config.env import env_bool, env_int, env_list, env_str
from config.secret_policy import (
    refuse_bad_credentials_keys,
    refuse_development_secrets,
    secret_setting_names,
)
from config.settings.base import *  # noqa: F403
from config.settings.base import (
    CACHE_URL,
    CELERY_BROKER_URL,
    MONITORING_REDIS_URL,
    cache_settings,
)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
# SECRET_KEY, every *_WEBHOOK_SECRET and TWILIO_AUTH_TOKEN (if set): none may be a
# development or example value.
refuse_development_secrets(
    {name: globals()[name] for name in secret_setting_names(list(globals()))}
)
# Vendor credentials' keys: no development default; unset, accounts store none.
VENDOR_CREDENTIALS_KEYS = env_list("VENDOR_CREDENTIALS_KEYS", [])
refuse_bad_credentials_keys(VENDOR_CREDENTIALS_KEYS)

# Throttles must count across every web process: a shared cache unless one is named.
if not CACHE_URL:
    on_redis = CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    CACHES = {
        "default": cache_settings(
            MONITORING_REDIS_URL or (CELERY_BROKER_URL if on_redis else "")
        )
    }

# collectstatic compresses the files and names each by its content's hash, so
# browsers may cache them for ever (whitenoise serves them so).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# Orchestrators probe the container over plain HTTP, inside the TLS proxy.
SECURE_REDIRECT_EXEMPT = [r"^health/(live|ready)$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 30)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
