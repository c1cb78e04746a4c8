"""Settings read from the environment, with defaults that run with no services at all.

With nothing set, the project runs on a SQLite file and an in-process Celery worker
(the "embedded default"). Set DATABASE_URL and CELERY_BROKER_URL to run on Postgres
and Redis (or RabbitMQ) as separate web, worker and beat processes.
"""

from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config import secret_policy
from config.env import env_bool, env_float, env_int, env_list, env_str
from config.logs import configure_structlog, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env_str("SECRET_KEY", secret_policy.DEVELOPMENT_SECRET_KEY)
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_celery_results",
    "crm",
    "vendors",
    "messaging",
    "campaigns",
    "automations",
    "api",
    "bench",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from the process itself: no web server in front is needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------
EMBEDDED_DATABASE_URL = f"sqlite:///{VAR_DIR / 'crm.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", EMBEDDED_DATABASE_URL),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded worker thread and the main thread share the file: WAL lets reads
    # go on during a write, IMMEDIATE takes the write lock up front instead of
    # failing half-way through a transaction.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_VALIDATORS = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATORS}.UserAttributeSimilarityValidator"},
    {"NAME": f"{_VALIDATORS}.MinimumLengthValidator"},
    {"NAME": f"{_VALIDATORS}.CommonPasswordValidator"},
    {"NAME": f"{_VALIDATORS}.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
# Whitenoise serves from here (empty until collectstatic; app directories in DEBUG).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "api.permissions.IsOrganizationMember",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.IdCursorPagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 50),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "api.throttles.UserRateThrottle",
        "api.throttles.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_USER", "1200/min"),
        "anon": env_str("API_THROTTLE_ANON", "60/min"),
        "webhook": env_str("API_THROTTLE_WEBHOOK", "6000/min"),
        "token_username": env_str("API_THROTTLE_TOKEN_USERNAME", "5/min"),
        "token_address": env_str("API_THROTTLE_TOKEN_ADDRESS", "30/min"),
    },
    # Proxies in front of the app whose X-Forwarded-For is trusted; with none, the
    # client address is the connection's, which a caller cannot choose.
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Campaign CRM API",
    "DESCRIPTION": "Leads, segments, campaigns, messages, receipts and automations "
    "of the caller's organization.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page loads its JS and CSS from our static files, not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Many models have a "status": each set of states gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "LogStatusEnum": "messaging.models.LogStatus",
        "ReceiptStatusEnum": "messaging.models.DeliveryReceipt.Status",
        "LeadImportStatusEnum": "api.models.LeadImport.Status",
        "AppointmentStatusEnum": "automations.models.Appointment.Status",
        "InvoiceStatusEnum": "automations.models.Invoice.Status",
        "EnrollmentStatusEnum": "automations.models.Enrollment.Status",
        "SuppressionReasonEnum": "crm.models.Suppression.Reason",
    },
}
# Largest lead CSV the API takes; bigger files go through `manage.py import_leads`.
API_LEAD_IMPORT_MAX_BYTES = env_int("API_LEAD_IMPORT_MAX_BYTES", 20 * 1024 * 1024)
# A lead import without a sign of life for this long is moved on by the sweeper: a
# running one is failed, a queued one (its broker message lost) enqueued again.
# Imports beat every few seconds; the largest upload takes well under a minute.
API_LEAD_IMPORT_STALL_SECONDS = env_int("API_LEAD_IMPORT_STALL_SECONDS", 600)
# /health calls a worker dead, or beat stopped, after this long without a sign.
HEALTH_WORKER_MAX_AGE_SECONDS = env_int("HEALTH_WORKER_MAX_AGE_SECONDS", 60)
HEALTH_BEAT_MAX_AGE_SECONDS = env_int("HEALTH_BEAT_MAX_AGE_SECONDS", 300)
# Where workers count tasks and beat their heart; the broker's Redis when unset.
MONITORING_REDIS_URL = env_str("MONITORING_REDIS_URL", "")

# --- Celery ---------------------------------------------------------------------
# No broker configured means the embedded default: an in-memory broker that only a
# worker inside the same process can consume (see campaigns' demo command).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "memory://localhost/")
CELERY_EMBEDDED = CELERY_BROKER_URL.startswith("memory://")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "django-db")
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Batches take up to seconds each: one prefetched message per process keeps a long
# batch from holding messages another idle process could run.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
# A worker child is replaced once it grows past this (KiB): a ceiling on leaks.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int(
    "CELERY_WORKER_MAX_MEMORY_PER_CHILD", 250_000
)
# Celery's Django fixup closes the database connection around every task unless
# this is set; a new connection costs ~16 ms, 9% of a worker's time
# (docs/performance.md). config.celery keeps it CONN_MAX_AGE, dropping broken ones,
# as Django does between requests; the fixup recycles it every this many tasks.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis redelivers an unacked message after this; no countdown may outlast it.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
}
if CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_SEND_SENT_EVENT = False

# --- Cache ----------------------------------------------------------------------
# The API's throttles count in the cache, so every web process must share it to
# count one client's requests together: CACHE_URL (redis://...) names it. Unset,
# each process keeps its own in memory (development and tests); production then
# takes the monitoring or broker Redis.
CACHE_URL = env_str("CACHE_URL", "")


def cache_settings(url: str) -> dict:
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "crm-cache",
    }


CACHES = {"default": cache_settings(CACHE_URL)}

# --- The CRM --------------------------------------------------------------------
CRM_DEFAULT_PHONE_REGION = env_str("CRM_DEFAULT_PHONE_REGION", "US")
CRM_SEGMENT_MAX_DEPTH = env_int("CRM_SEGMENT_MAX_DEPTH", 8)
CRM_SEGMENT_PREVIEW_SAMPLE = env_int("CRM_SEGMENT_PREVIEW_SAMPLE", 10)

# Where people reach this service from outside: the base of the links in messages
# (unsubscribe links), which must resolve from a recipient's mail client.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://localhost:8000")

# --- Campaigns and sending ------------------------------------------------------
# Default chunk size by audience size: (largest audience, chunk size), in order.
CAMPAIGN_CHUNK_SIZE_TIERS = [(50, 50), (500, 100), (5000, 150)]
CAMPAIGN_CHUNK_SIZE_LARGEST = env_int("CAMPAIGN_CHUNK_SIZE_LARGEST", 200)
CAMPAIGN_CHUNK_SIZE_MAX = env_int("CAMPAIGN_CHUNK_SIZE_MAX", 200)
MESSAGING_MAX_ATTEMPTS = env_int("MESSAGING_MAX_ATTEMPTS", 3)
# What the composer's estimate prices a send at, before launch; the defaults are the
# simulator's prices (vendors/simulator_outcomes.py).
SMS_PRICE_PER_SEGMENT = Decimal(env_str("SMS_PRICE_PER_SEGMENT", "0.0079"))
EMAIL_PRICE_PER_MESSAGE = Decimal(env_str("EMAIL_PRICE_PER_MESSAGE", "0.001"))
MESSAGING_RETRY_BASE_SECONDS = env_float("MESSAGING_RETRY_BASE_SECONDS", 30.0)
MESSAGING_RETRY_MAX_SECONDS = env_float("MESSAGING_RETRY_MAX_SECONDS", 1800.0)
MESSAGING_STUCK_AFTER_SECONDS = env_int("MESSAGING_STUCK_AFTER_SECONDS", 600)
# Final messages (and their receipts) are deleted this many days after their last
# change, once the daily snapshots counted them; 0 keeps them for ever.
MESSAGING_RETENTION_DAYS = env_int("MESSAGING_RETENTION_DAYS", 0)
MESSAGING_RETENTION_MAX_PER_RUN = env_int("MESSAGING_RETENTION_MAX_PER_RUN", 1_000_000)
# A campaign pauses itself when at least this share of its last ..._WINDOW attempts
# were refused by the vendor (a bad list, a blocked sender): a marketer looks first.
MESSAGING_AUTO_PAUSE_FAILURE_RATE = env_float("MESSAGING_AUTO_PAUSE_FAILURE_RATE", 0.2)
MESSAGING_AUTO_PAUSE_WINDOW = env_int("MESSAGING_AUTO_PAUSE_WINDOW", 500)
# A message sent this long ago with no receipt is final: `no_receipt`.
MESSAGING_RECEIPT_TIMEOUT_SECONDS = env_int(
    "MESSAGING_RECEIPT_TIMEOUT_SECONDS", 72 * 3600
)

# --- Automations (celery beat) --------------------------------------------------
# Days overdue at which an open invoice gets a dunning notice, each once.
AUTOMATIONS_DUNNING_THRESHOLDS_DAYS = sorted(
    {
        int(days)
        for days in env_list(
            "AUTOMATIONS_DUNNING_THRESHOLDS_DAYS", ["1", "3", "7", "14"]
        )
    }
)
AUTOMATIONS_DUNNING_CHANNEL = env_str("AUTOMATIONS_DUNNING_CHANNEL", "sms")
AUTOMATIONS_REMINDER_CHANNEL = env_str("AUTOMATIONS_REMINDER_CHANNEL", "sms")
# Attempts of every automation job (scan, send, snapshot) before it is recorded as
# failed in django-celery-results; the wait doubles from the base between attempts.
AUTOMATIONS_JOB_ATTEMPTS = env_int("AUTOMATIONS_JOB_ATTEMPTS", 3)
AUTOMATIONS_JOB_BACKOFF_SECONDS = env_int("AUTOMATIONS_JOB_BACKOFF_SECONDS", 10)

# --- Vendors --------------------------------------------------------------------
VENDOR_DEFAULT = env_str("VENDOR_DEFAULT", "simulator")
SIMULATOR_SUCCESS_RATE = env_float("SIMULATOR_SUCCESS_RATE", 0.9)
SIMULATOR_LATENCY_MS = env_int("SIMULATOR_LATENCY_MS", 0)
SIMULATOR_RECEIPT_DELAY_MS = env_int("SIMULATOR_RECEIPT_DELAY_MS", 200)
SIMULATOR_SEED = env_str("SIMULATOR_SEED", "")
SIMULATOR_WEBHOOK_SECRET = env_str(
    "SIMULATOR_WEBHOOK_SECRET", secret_policy.DEVELOPMENT_WEBHOOK_SECRET
)
SIMULATOR_REDIS_URL = env_str("SIMULATOR_REDIS_URL", "")
# Fernet keys of vendor accounts' credentials (vendors.credentials), comma-separated:
# the first encrypts, all decrypt. Development derives one from SECRET_KEY.
VENDOR_CREDENTIALS_KEYS = env_list(
    "VENDOR_CREDENTIALS_KEYS",
    [secret_policy.development_credentials_key(SECRET_KEY)],
)
# Twilio (vendors.twilio): callbacks are refused until TWILIO_AUTH_TOKEN is set.
TWILIO_API_BASE = env_str("TWILIO_API_BASE", "https://api.twilio.com")
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER", "")
TWILIO_MESSAGING_SERVICE_SID = env_str("TWILIO_MESSAGING_SERVICE_SID", "")
# Our public base URL: status callbacks go to it, and signatures are checked on it.
TWILIO_STATUS_CALLBACK_URL = env_str("TWILIO_STATUS_CALLBACK_URL", "")
TWILIO_MAX_IN_FLIGHT = env_int("TWILIO_MAX_IN_FLIGHT", 16)
TWILIO_TIMEOUT_SECONDS = env_float("TWILIO_TIMEOUT_SECONDS", 10.0)

# --- Logs and metrics -----------------------------------------------------------
# One JSON object a line with LOG_FORMAT=json, readable console lines otherwise;
# phone numbers and email addresses are masked in every line (config.redaction).
LOG_FORMAT = env_str("LOG_FORMAT", "console")
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured(
        f"LOG_FORMAT must be json or console, got {LOG_FORMAT!r}"
    )
# Unset, a Celery process logs at its --loglevel; set, every process logs at this.
LOG_LEVEL = env_str("LOG_LEVEL", "")
LOGGING = logging_config(json=LOG_FORMAT == "json", level=LOG_LEVEL or "INFO")
configure_structlog()
MIDDLEWARE = ["config.middleware.RequestLogMiddleware", *MIDDLEWARE]
# The bearer token /metrics asks for; empty, the endpoint is off (404).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
