"""quantdash settings: everything comes from environment variables, with defaults that make a
development checkout work on SQLite and a local Redis.

Production: DEBUG=0, a real SECRET_KEY and ALLOWED_HOSTS; then `manage.py check --deploy` is clean.
"""

import json
import os
from pathlib import Path

from quantdash.env import ConfigError, database_from_url, env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-for-production-0123456789"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise RuntimeError("SECRET_KEY must be set when DEBUG=0")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",  # django-ninja: the JSON APIs (quantdash/api_site.py); its templates serve /api/docs
    "accounts",
    "planner",
    "catalog",
    "jobs",
    "runtime",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "quantdash.urls"
ASGI_APPLICATION = "quantdash.asgi.application"
WSGI_APPLICATION = None

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

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", "sqlite:///var/quantdash.sqlite3"), str(BASE_DIR)
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["accounts.backends.RateLimitedModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"
# WhiteNoise serves static files from the app server itself (uvicorn has no static handler);
# with DEBUG on it finds them in place, so `collectstatic` is only needed for production.
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Where model files live: one folder per variant. On several nodes this is a shared filesystem
# mounted at the same path everywhere (see README, "Artifacts across nodes").
ARTIFACT_ROOT = Path(env_str("ARTIFACT_ROOT", str(BASE_DIR / "var" / "artifacts")))
# Evaluations keep a reference's log-probs here (llama.cpp --kl-divergence-base files, one per
# reference/text/context/chunks) so the next variant compared with it doesn't run it again; a file
# larger than the limit is not stored. A worker-side folder (need not be shared).
BASE_LOGITS_CACHE_DIR = Path(env_str("BASE_LOGITS_CACHE_DIR",
                                     str(ARTIFACT_ROOT / "cache" / "base-logits")))
BASE_LOGITS_CACHE_MAX_BYTES = env_int("BASE_LOGITS_CACHE_MAX_BYTES", 4 * 1024**3)
# Uploads larger than this are refused (413) before their body is read.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 20 * 1024**3)
# Any other request body larger than this is refused (413) before it is read (quantdash.asgi).
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 16 * 1024**2)
# Free disk the catalog keeps spare on ARTIFACT_ROOT: an upload or import that would leave less
# is refused up front (507 / "not enough free disk"). Tests shrink it to fill a small tmpfs.
DISK_SPARE_BYTES = env_int("DISK_SPARE_BYTES", 1024**3)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2

# --- Redis and Celery -------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# The longest hard time limit any job method may have; the broker's visibility timeout must be
# longer, or Redis would hand a still-running job to a second worker.
JOB_HARD_TIME_LIMIT_MAX = env_int("JOB_HARD_TIME_LIMIT_MAX", 6 * 3600)
CELERY_BROKER_URL = REDIS_URL
# CELERY_VISIBILITY_TIMEOUT / CELERY_UNACKED_RESTORE_SECONDS exist for the reliability tests, which
# shrink them to prove that a re-delivered message is a no-op (the Job claim is conditional).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", JOB_HARD_TIME_LIMIT_MAX + 3600),
}
if env_int("CELERY_UNACKED_RESTORE_SECONDS", 0) > 0:  # kombu's default scan: every 10 s x 10
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        unacked_restore_interval=env_int("CELERY_UNACKED_RESTORE_SECONDS", 0),
        unacked_restore_throttle=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # the Job row is the result
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_QUEUES_NAMES = ("cpu", "gpu")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Seconds between a worker's heartbeat writes, and after how long a silent worker counts as down.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 10)
WORKER_STALE_SECONDS = env_int("WORKER_STALE_SECONDS", 45)
# A running job writes its heartbeat every JOB_HEARTBEAT_SECONDS; after JOB_LOST_SECONDS without
# one the reaper counts its worker as lost and retries it, up to JOB_MAX_ATTEMPTS attempts.
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 2)
JOB_LOST_SECONDS = env_int("JOB_LOST_SECONDS", 60)
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 2)
# The niceness a job's process (and every tool it starts) runs at. A node often runs a worker and
# the runtime server side by side: at 19 a job takes the cores chat leaves idle, and chat keeps its
# speed while a job runs (bench/shared_node.py); 0 lets the two share the cores equally.
JOB_NICE = env_int("JOB_NICE", 19)
if not 0 <= JOB_NICE <= 19:
    raise ConfigError(f"JOB_NICE must be 0 to 19, got {JOB_NICE}")
# Per-method (soft, hard) time limits in seconds replacing the methods' own, as JSON:
# JOB_TIME_LIMIT_OVERRIDES='{"gguf": [2, 600]}'. For tests and for sites with slow nodes.
JOB_TIME_LIMIT_OVERRIDES = json.loads(env_str("JOB_TIME_LIMIT_OVERRIDES", "") or "{}")

# Django's cache (login failure counters) lives in Redis, so every web process shares it.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        "KEY_PREFIX": "quantdash",
    }
}

# Web processes `python -m quantdash.web` (make run, the Docker web image) starts: by default one
# per CPU this process may use, since one Python process keeps only one core busy.
WEB_WORKERS = env_int("WEB_WORKERS", len(os.sched_getaffinity(0)))
# /healthz answers from a check at most this old (quantdash/health.py); 0: a check per request
HEALTHZ_MAX_AGE_SECONDS = env_float("HEALTHZ_MAX_AGE_SECONDS", 2.0)

# --- Security ---------------------------------------------------------------------------------
# After LOGIN_FAILURE_LIMIT failed logins for one username from one address, that pair is refused
# (429) for LOGIN_LOCKOUT_SECONDS.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- Runtime (model serving; see README "Runtime") ----------------------------------------------
# The runtime server process (`manage.py runtime_server`) listens on loopback; the dashboard talks
# to it at RUNTIME_URL with the shared secret RUNTIME_TOKEN (required when DEBUG=0).
RUNTIME_URL = env_str("RUNTIME_URL", "http://127.0.0.1:8100")
RUNTIME_TOKEN = env_str("RUNTIME_TOKEN", "dev-only-runtime-token" if DEBUG else "")
RUNTIME_MEMORY_BUDGET_GB = float(env_str("RUNTIME_MEMORY_BUDGET_GB", "4"))
RUNTIME_MAX_CONCURRENT = env_int("RUNTIME_MAX_CONCURRENT", 1)  # generations per variant at once
RUNTIME_QUEUE = env_int("RUNTIME_QUEUE", 2)  # requests per variant waiting beyond that; then 429
RUNTIME_QUEUE_TIMEOUT = env_int("RUNTIME_QUEUE_TIMEOUT", 60)
RUNTIME_IDLE_SECONDS = env_int("RUNTIME_IDLE_SECONDS", 600)  # unload a model unused this long
RUNTIME_THREADS = env_int("RUNTIME_THREADS", 2)
# Threads while a job runs on the same node (quantdash/node.py); 0: half of RUNTIME_THREADS.
RUNTIME_THREADS_WHILE_JOB = env_int("RUNTIME_THREADS_WHILE_JOB", 0)
RUNTIME_N_CTX = env_int("RUNTIME_N_CTX", 2048)  # capped by the model's own context length
RUNTIME_RETRY_AFTER = env_int("RUNTIME_RETRY_AFTER", 2)
