"""Settings for rlchf, read from environment variables.

Defaults are safe for development: a SQLite file under ./var, DEBUG on, a throwaway secret key.
Production sets DEBUG=0, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL (PostgreSQL) and REDIS_URL.
"""
from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_json, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("RLCHF_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
_DEV_SECRET = "django-insecure-development-only-key-change-me"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_htmx",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "annotation",
    "jobs",
    "synthetic",
    "aggregation",
    "training",
    "evaluation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
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

# Database: a SQLite file by default; PostgreSQL (or any dj-database-url URL) through DATABASE_URL.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue instead of failing
    # with "database is locked" on lock upgrade; WAL lets readers run beside the writer.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif env_int("DB_POOL_SIZE", 0) > 0:
    # Under ASGI every request may run in a new thread, so persistent connections pile up until
    # PostgreSQL refuses clients; a pool bounds them per process (Django's psycopg pool support).
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured("DB_POOL_SIZE and DB_CONN_MAX_AGE cannot both be set")
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DB_POOL_SIZE", 0),
        "timeout": 30,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DB_SERVER_SIDE_BINDING", False):
    # Parameters bound by the server: psycopg prepares a statement a connection has run five
    # times, so with pooled connections PostgreSQL stops re-planning the annotation loop's queries.
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Live updates. With REDIS_URL: channels-redis. Without it, a database-backed layer so that the
# web server and every worker process reach the same groups with no extra server.
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "jobs.channel_layer.DatabaseChannelLayer"}}

# API submits (token auth) served beside Django's request pipeline on PostgreSQL: annotation.fast_submit.
ANNOTATION_FAST_SUBMIT = env_bool("ANNOTATION_FAST_SUBMIT", True)

# Live project pages: progress events are coalesced to at most one per project per this many
# seconds per server process (the last change always arrives). 0 sends one per ranking.
LIVE_PROGRESS_INTERVAL = env_float("LIVE_PROGRESS_INTERVAL", 0.5)

TASKS = {
    "default": {
        "BACKEND": env_str("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default", "gpu"],
    }
}
# Runs (jobs app): a running run's worker heartbeats every JOBS_HEARTBEAT_SECONDS; a run silent for
# JOBS_STALE_SECONDS is marked interrupted by the reaper. Extra handler modules are imported at
# start-up (deployments with their own run kinds; the tests' fake handlers).
JOBS_HEARTBEAT_SECONDS = env_int("JOBS_HEARTBEAT_SECONDS", 5)
JOBS_STALE_SECONDS = env_int("JOBS_STALE_SECONDS", 60)
JOBS_EXTRA_HANDLER_MODULES = env_list("JOBS_EXTRA_HANDLER_MODULES", [])

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotation-home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.js from the plotly wheel, served as static/vendor/plotly.min.js (no CDN).
    "aggregation.staticfiles.PlotlyFinder",
]
MEDIA_ROOT = VAR_DIR / "media"
# Where runs write their artifacts (snapshots, checkpoints, logs) and where models are kept.
ARTIFACTS_DIR = Path(env_str("RLCHF_ARTIFACTS_DIR", str(VAR_DIR / "artifacts")))
MODELS_DIR = Path(env_str("RLCHF_MODELS_DIR", str(VAR_DIR / "models")))
# More directories a researcher's model path may name (jobs.paths), comma-separated; a path
# anywhere else (a secret, another user's files) is refused in every form, service and API.
EXTRA_MODEL_DIRS = [Path(p) for p in env_list("RLCHF_EXTRA_MODEL_DIRS", [])]
# Synthetic and generation runs load their engine in a child process, so an engine crash (CUDA,
# OOM) fails the run but never the worker. Off only for tests and debugging.
SYNTHETIC_ENGINE_SUBPROCESS = env_bool("SYNTHETIC_ENGINE_SUBPROCESS", True)
# OpenAI-compatible inference endpoints (synthetic.endpoints): name -> {"base_urls": [...],
# "api_key_env": "VAR", "description": "..."}. Researchers choose one by name; a run never holds an
# address or a variable name. Free base URLs (never sent a key) only with INFERENCE_ALLOW_FREE_URLS.
INFERENCE_ENDPOINTS = env_json("INFERENCE_ENDPOINTS", {})
INFERENCE_ALLOW_FREE_URLS = env_bool("INFERENCE_ALLOW_FREE_URLS", False)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 50 * 1024 * 1024)

REST_FRAMEWORK = {
    # Token first: an anonymous API request then gets 401 with `WWW-Authenticate: Token`, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's three parsers; JSON's answers a body nested too deeply with 400 (config/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "config.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "rlchf API",
    "DESCRIPTION": "Projects, items, assignments, rankings and exports for collective feedback.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page loads Swagger UI from drf-spectacular-sidecar's static files, no CDN, and never
    # asks validator.swagger.io. (No Redoc page: its template pulls fonts from Google.)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Choice sets sharing a field name (status, kind, objective) across the apps' APIs: named here,
    # or drf-spectacular gives them hashed names (and renamed the annotation API's StatusEnum and KindEnum).
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "annotation.models.Project.Status",
        "KindEnum": "annotation.models.Rater.Kind",
        "RunStatusEnum": "jobs.models.Run.Status",
        "ModelStatusEnum": "training.models.RegisteredModel.Status",
        "ModelKindEnum": "training.models.RegisteredModel.Kind",
        "TrainingObjectiveEnum": "training.forms.OBJECTIVE_CHOICES",
        "DpoObjectiveEnum": "training.forms.DPO_OBJECTIVE_CHOICES",
    },
}

# Assignment leases: an item handed to an annotator is held this long, then returns to the pool.
ASSIGNMENT_LEASE_SECONDS = env_int("ASSIGNMENT_LEASE_SECONDS", 30 * 60)

if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Aggregation: demographic groups smaller than this are hidden in every per-group view and export.
AGGREGATE_MIN_GROUP = env_int("AGGREGATE_MIN_GROUP", 5)
# Snapshots (aggregation writes them, training and evaluation read them): SNAPSHOTS_DIR/<id>.
# Training: TRAINING_NODE_GPUS is how many
# GPUs a gpu-queue worker node has (runs asking for more are refused; 0 = CPU only); TRAINING_LAUNCHER
# is "local" (accelerate launch on the worker) or "slurm" (submitit; TRAINING_SLURM_* below).
SNAPSHOTS_DIR = Path(env_str("RLCHF_SNAPSHOTS_DIR", str(VAR_DIR / "snapshots")))
TRAINING_NODE_GPUS = env_int("TRAINING_NODE_GPUS", 0)
TRAINING_LAUNCHER = env_str("TRAINING_LAUNCHER", "local")
TRAINING_SLURM_FOLDER = Path(env_str("TRAINING_SLURM_FOLDER", str(VAR_DIR / "slurm")))
TRAINING_SLURM_PARTITION = env_str("TRAINING_SLURM_PARTITION", "")
TRAINING_SLURM_TIMEOUT_MIN = env_int("TRAINING_SLURM_TIMEOUT_MIN", 24 * 60)
TRAINING_SLURM_EXECUTOR = env_str("TRAINING_SLURM_EXECUTOR", "slurm")  # "local": submitit's local executor
# ---------------------------------------------------------------- evaluation
# Evaluation runs load their engine in a child process (see SYNTHETIC_ENGINE_SUBPROCESS).
EVALUATION_ENGINE_SUBPROCESS = env_bool("EVALUATION_ENGINE_SUBPROCESS", True)
