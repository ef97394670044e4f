"""Settings for Campus Card Operations, read from the environment (see ``docs/configuration.md``).

Embedded defaults let a laptop run everything with no services installed: SQLite in WAL mode
and a private Redis under ``var/``. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and
an external Redis for production.
"""

from __future__ import annotations

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from ops.env import envbool, envint, envlist, envstr
from ops.paths import PROJECT_ROOT, var_dir
from streams import embedded_redis

BASE_DIR = PROJECT_ROOT
VAR_DIR = var_dir()

DEBUG = envbool("DEBUG", False)
_secret = envstr("SECRET_KEY")
if not _secret:
    if not DEBUG and envbool("CAMPUSCARD_PRODUCTION", False):
        raise ImproperlyConfigured("SECRET_KEY must be set in production (or SECRET_KEY_FILE)")
    # A per-installation key kept under var/, so a demo's sessions survive a restart.
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists():
        from django.core.management.utils import get_random_secret_key

        _key_file.write_text(get_random_secret_key(), encoding="utf-8")
        _key_file.chmod(0o600)
    _secret = _key_file.read_text(encoding="utf-8").strip()
SECRET_KEY = _secret
# R-SEC-1: the key that chains the audit log (HMAC). Never in the database: from the
# environment (AUDIT_HMAC_KEY or AUDIT_HMAC_KEY_FILE); the demo keeps one under var/.
_audit_key = envstr("AUDIT_HMAC_KEY")
if not _audit_key:
    if not DEBUG and envbool("CAMPUSCARD_PRODUCTION", False):
        raise ImproperlyConfigured("AUDIT_HMAC_KEY must be set in production (or AUDIT_HMAC_KEY_FILE)")
    _audit_file = VAR_DIR / "audit_hmac_key"
    if not _audit_file.exists():
        import secrets

        _audit_file.write_text(secrets.token_hex(32), encoding="utf-8")
        _audit_file.chmod(0o600)
    _audit_key = _audit_file.read_text(encoding="utf-8").strip()
AUDIT_HMAC_KEY = _audit_key
PRODUCTION = envbool("CAMPUSCARD_PRODUCTION", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "ops.accounts",
    "ops.registry",
    "ops.registry.lifecycle",
    "ops.audit",
    "ops.alerts",
    "ops.personal_data",
    "ops.pipeline",
    "ops.backup",
    "ops.demo",
    "bench",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "ops.middleware.ChosenLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: answers a locked-out login with our page
]

ROOT_URLCONF = "ops.urls"
ASGI_APPLICATION = "ops.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "ops" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_default_db = f"sqlite:///{VAR_DIR / 'campuscard.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(envstr("DATABASE_URL") or _default_db, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the processor writes; IMMEDIATE avoids the
    # "database is locked" upgrade deadlock between two writers.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    _test_name = envstr("CAMPUSCARD_TEST_SQLITE")
    if _test_name:  # a file, so that subprocesses started by tests see the test database
        DATABASES["default"]["TEST"] = {"NAME": _test_name}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: streams and the channel layer ---------------------------------------------------
REDIS_URL = envstr("REDIS_URL") or embedded_redis.ensure(VAR_DIR / "redis")
CHANNEL_REDIS_URLS = envlist("CHANNEL_REDIS_URLS", [REDIS_URL])
# The events stream (issue 14): partitions (every agent's event_partitions must match), and where
# it lives — REDIS_URL, or a Redis Cluster (any node's URL with EVENTS_REDIS_CLUSTER=1).
EVENT_PARTITIONS = envint("EVENT_PARTITIONS", 16, minimum=1)
EVENTS_REDIS_URL = envstr("EVENTS_REDIS_URL") or REDIS_URL
EVENTS_REDIS_CLUSTER = envbool("EVENTS_REDIS_CLUSTER", False)
# Least privilege at the edge (issue 12, Build 6): one Redis ACL user per reader agent, made by the
# device registry and re-made by the supervisor when Redis lost them (ops/registry/device_acl.py).
DEVICE_REDIS_ACL = envbool("DEVICE_REDIS_ACL", False)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8's 5 s default socket timeout kills idle receivers (DESIGN.md).
            # Several hosts (CHANNEL_REDIS_URLS, issue 14): channels_redis shards the channels
            # and groups over them by consistent hashing — the desks' fan-out on more than one
            # Redis, while the streams stay on REDIS_URL.
            "hosts": [{"address": url, "socket_timeout": None} for url in CHANNEL_REDIS_URLS],
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

# --- Auth -----------------------------------------------------------------------------------
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out account or address
    "django.contrib.auth.backends.ModelBackend",
]
# R-SEC-1 login lockout (django-axes): after AXES_FAILURE_LIMIT failed logins for one account
# from one address, that pair is locked for AXES_COOLOFF_HOURS (an NIC admin can unlock it in
# the admin, audited). Per account *and* address, so a guessing attacker cannot lock a real
# operator out from elsewhere. Records live in the database (AXES_HANDLER).
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = envint("AXES_COOLOFF_MINUTES", 30, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = envint("AXES_PROXY_COUNT", 0, minimum=0)
AXES_VERBOSE = False
# R-SEC-1 / Cybersecurity Law art. 21: audit records are kept at least 184 days (≥ 6 months);
# `campuscard audit purge` refuses anything younger.
AUDIT_RETENTION_DAYS = envint("AUDIT_RETENTION_DAYS", 184, minimum=184)
# Taps are kept at least as long (Cybersecurity Law art. 21: logs ≥ 6 months; R-SEC-5: misuse on
# the record); on
# PostgreSQL whole months past it are dropped by the processor (ops.pipeline.partitions).
TAP_RETENTION_DAYS = envint("TAP_RETENTION_DAYS", 366, minimum=184)
# A logged-out or disabled operator's open websockets are closed within this many seconds.
WS_RECHECK_S = envint("WS_RECHECK_S", 3, minimum=1)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", False)
X_FRAME_OPTIONS = "DENY"  # nothing here is meant to be framed
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if PRODUCTION:
    # Served behind TLS (docs/deploy.md): cookies only over HTTPS, HSTS, HTTP → HTTPS. A TLS
    # proxy in front sets X-Forwarded-Proto; `campuscard check --deploy` passes with these.
    SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the container's health probe speaks plain HTTP
    SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 12 * 3600, minimum=300)  # one shift

# --- REST API for HR / Academic Affairs systems ------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ops.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Campus Card Operations API",
    "DESCRIPTION": "校园一卡通卡务接口：批量导入、发卡、挂失、解挂、补卡、注销、延期。"
    "Token authentication: `Authorization: Token <key>` (campuscard api-token).",
    "VERSION": "1.0.0",
}

# --- i18n: Simplified Chinese first, English available -------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "ops" / "locale"]
TIME_ZONE = envstr("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

MEDIA_ROOT = VAR_DIR / "media"  # cardholder photos (R-CARD-8); never served publicly
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve app static files even before collectstatic (demo, tests)

# --- Pipeline tuning ------------------------------------------------------------------------
PROCESSOR_BATCH_SIZE = envint("PROCESSOR_BATCH_SIZE", 500, minimum=1)
PROCESSOR_CLAIM_IDLE_MS = envint("PROCESSOR_CLAIM_IDLE_MS", 30_000, minimum=100)
# a processor's hold on its partitions of the events stream: renewed every second, so a dead
# processor's partitions are served again within this (issue 14)
PROCESSOR_LEASE_MS = envint("PROCESSOR_LEASE_MS", 8_000, minimum=2_000)
LIVE_FEED_ROWS = envint("LIVE_FEED_ROWS", 50, minimum=5)
# The credential feed's Ed25519 signing keys (issue 12, R-SEC-5): a key-ring file only the relay
# and NIC's `campuscard feedkey` need; on a persistent volume of their own in production
CREDENTIAL_KEYRING = envstr("CREDENTIAL_KEYRING") or str(VAR_DIR / "feed-keys" / "keyring.json")
# How often `campuscard supervise` checks for silent/lagging devices, escalations and flapping
SUPERVISE_S = envint("SUPERVISE_S", 5, minimum=1)
# Two taps of one card at different sites closer together than this are a clone suspicion.
CLONE_MIN_TRAVEL_S = envint("CLONE_MIN_TRAVEL_S", 60, minimum=1)
# R-OPS-3: an alert nobody acknowledged goes up a level after this long (and again after twice)
ALERT_ESCALATE_AFTER_S = {
    "critical": envint("ALERT_ESCALATE_CRITICAL_S", 300, minimum=10),
    "warning": envint("ALERT_ESCALATE_WARNING_S", 900, minimum=10),
    "info": envint("ALERT_ESCALATE_INFO_S", 3600, minimum=10),
}
# Dorm desk: residents not seen at any reader for this many days are listed (aggregated)
DORM_NOT_SEEN_DAYS = envint("DORM_NOT_SEEN_DAYS", 3, minimum=1)
# R-SEC-2: default length of a personal-data grant (the NIC reviewer picks 1 h to 7 days)
PERSONAL_DATA_GRANT_HOURS = min(envint("PERSONAL_DATA_GRANT_HOURS", 24, minimum=1), 7 * 24)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
