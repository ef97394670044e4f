"""Settings for Campus Card Operations, read from the environment (see ``docs/configuration.md``).

Embedded defaults let a laptop run everything with no services installed: SQLite in WAL mode
and a private Redis under ``var/``. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and
an external Redis for production.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from ops import logs
from ops.env import envbool, envint, envlist, envstr, parse_clock
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
    "drf_spectacular_sidecar",  # Swagger UI's own files, served from here (issue 19, item 12)
    "ops.accounts.axes_app.AxesConfig",  # django-axes, named in Chinese in the admin (issue 19, item 6)
    "django_cas_ng",  # its tables (ticket ↔ session, for CAS single logout) exist whether CAS is on or not
    "ops.accounts",
    "ops.registry",
    "ops.registry.lifecycle",
    "ops.registry.calendar",  # the academic calendar and central door rules (issue 17)
    "ops.registry.passback",  # anti-passback zones' forgiveness (issue 17, Build 5)
    "ops.registry.emergency",  # emergency modes: lockdown and unlock-all (issue 17, Build 2)
    "ops.registry.approvals",  # device install/move/removal requests approved by NIC (issue 18, Build 2)
    "ops.audit",
    "ops.alerts",
    "ops.personal_data",
    "ops.muster",
    "ops.library",  # the library's SIP2 server and workbench (issue 18, Build 5)
    "ops.selfservice",  # cardholders' own pages under /me/ (issue 18, Build 6)
    "ops.reports",  # reports for leadership, mailed to the leader role (issue 18, Build 4)
    "ops.pipeline",
    "ops.backup",
    "ops.demo",
    "bench",
    "dashboard",
]

MIDDLEWARE = [
    "ops.middleware.RequestIdMiddleware",  # first: every later line of the request carries its id
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
    # persistent connections, checked before their first use in each request (and each
    # database_sync_to_async call of a live page): a PostgreSQL that restarted left every one of
    # them dead, and a desk's next query failed and stopped its live loop (issue 12, acceptance 4)
    DATABASES = {
        "default": dj_database_url.parse(
            envstr("DATABASE_URL") or _default_db, conn_max_age=60, conn_health_checks=True
        )
    }
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
    "ops.accounts.backends.LocalPasswordBackend",  # local accounts' passwords (NIC's break-glass admins)
]
# Campus single sign-on (issue 16), each on when its server is named: CAS (django-cas-ng) and
# LDAP (django-auth-ldap, on the same login form). A first sign-in makes an operator account with
# no role and no rights until NIC grants one (R-SEC-3; ops.accounts.services.sign_in_through_sso).
CAS_SERVER_URL = envstr("CAS_SERVER_URL", "")
CAS_VERSION = envstr("CAS_VERSION", "3")
if CAS_VERSION not in ("2", "3"):
    raise ImproperlyConfigured(f"CAS_VERSION={CAS_VERSION!r} must be 2 or 3 (single logout needs 3)")
CAS_NAME_ATTRIBUTE = envstr("CAS_NAME_ATTRIBUTE", "cn")
CAS_EMAIL_ATTRIBUTE = envstr("CAS_EMAIL_ATTRIBUTE", "mail")
CAS_REDIRECT_URL = "/"  # the operator's desk, or the page saying NIC must grant a role
CAS_LOGOUT_NEXT_PAGE = LOGOUT_REDIRECT_URL
CAS_IGNORE_REFERER = True
CAS_FORCE_CHANGE_USERNAME_CASE = "lower"
CAS_APPLY_ATTRIBUTES_TO_USER = False  # never: it would copy e.g. an `is_staff` attribute onto the account
CAS_LOGIN_MSG = None
CAS_LOGGED_MSG = None
if CAS_SERVER_URL:
    if not CAS_SERVER_URL.endswith("/"):
        CAS_SERVER_URL += "/"
    AUTHENTICATION_BACKENDS.append("ops.accounts.cas_backend.CampusCASBackend")
LDAP_SERVER_URI = envstr("LDAP_SERVER_URI", "")
LDAP_NAME_ATTRIBUTE = envstr("LDAP_NAME_ATTRIBUTE", "cn")
LDAP_EMAIL_ATTRIBUTE = envstr("LDAP_EMAIL_ATTRIBUTE", "mail")
if LDAP_SERVER_URI:
    try:
        import ldap
        from django_auth_ldap.config import LDAPSearch
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"LDAP_SERVER_URI is set but the LDAP client is not installed ({exc}): pip install 'campuscard[ldap]'"
        ) from exc
    AUTH_LDAP_SERVER_URI = LDAP_SERVER_URI
    AUTH_LDAP_START_TLS = envbool("LDAP_START_TLS", False)
    AUTH_LDAP_BIND_DN = envstr("LDAP_BIND_DN", "")
    AUTH_LDAP_BIND_PASSWORD = envstr("LDAP_BIND_PASSWORD", "")
    _dn_template = envstr("LDAP_USER_DN_TEMPLATE", "")
    _search_base = envstr("LDAP_USER_SEARCH_BASE", "")
    if _dn_template:
        AUTH_LDAP_USER_DN_TEMPLATE = _dn_template
    elif _search_base:
        AUTH_LDAP_USER_SEARCH = LDAPSearch(
            _search_base, ldap.SCOPE_SUBTREE, envstr("LDAP_USER_FILTER", "(uid=%(user)s)")
        )
    else:
        raise ImproperlyConfigured("LDAP_SERVER_URI needs LDAP_USER_DN_TEMPLATE or LDAP_USER_SEARCH_BASE")
    _ldap_timeout = envint("LDAP_TIMEOUT_S", 5, minimum=1)  # a directory that hangs must not hang the login
    AUTH_LDAP_CONNECTION_OPTIONS = {ldap.OPT_NETWORK_TIMEOUT: _ldap_timeout, ldap.OPT_TIMEOUT: _ldap_timeout}
    AUTH_LDAP_USER_ATTR_MAP: dict[str, str] = {}  # name and e-mail: sign_in_through_sso
    AUTH_LDAP_ALWAYS_UPDATE_USER = False
    AUTHENTICATION_BACKENDS.append("ops.accounts.ldap_backend.CampusLDAPBackend")
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
# issue 18, Build 6: where and when NIC's service window is open, shown on the cardholders' /me/
# page under "解挂与补卡" (e.g. "信息楼一楼服务大厅，工作日 8:30–17:00"); empty: not shown
SELF_SERVICE_NIC_DESK = envstr("SELF_SERVICE_NIC_DESK", "")
# R-SEC-1 / Cybersecurity Law art. 21: audit records are kept at least 184 days (≥ 6 months);
# `campuscard audit purge` refuses anything younger.
AUDIT_RETENTION_DAYS = envint("AUDIT_RETENTION_DAYS", 184, minimum=184)
# Signed checkpoints of the audit chain's head, outside the database (issue 20, R-SEC-1): a cut
# tail is named by `audit verify`. Written by `campuscard supervise` every AUDIT_CHECKPOINT_S.
AUDIT_CHECKPOINT_FILE = envstr("AUDIT_CHECKPOINT_FILE") or str(VAR_DIR / "audit" / "checkpoints.jsonl")
AUDIT_CHECKPOINT_S = envint("AUDIT_CHECKPOINT_S", 60, minimum=1)
# Taps are kept at least as long (Cybersecurity Law art. 21: logs ≥ 6 months; R-SEC-5: misuse on
# the record); on
# PostgreSQL whole months past it are dropped by the processor (ops.pipeline.partitions).
TAP_RETENTION_DAYS = envint("TAP_RETENTION_DAYS", 366, minimum=184)
# A reader's clock (issue 20): a message dated more than this far ahead of the server's clock, or
# older than TAP_RETENTION_DAYS, is refused and alerted (`clock_skew`); liveness uses the server's.
CLOCK_SKEW_MAX_S = envint("CLOCK_SKEW_MAX_S", 300, minimum=5)
# A device key issued again (not marked compromised): the old key is still accepted this long, so
# what the agent signed before it was given the new key is stored; a compromised key: not at all.
DEVICE_KEY_OVERLAP_S = envint("DEVICE_KEY_OVERLAP_S", 600, minimum=0)
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
    # the container's health probe and Prometheus (scraping each web worker on the inner network,
    # docs/operations.md) speak plain HTTP
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
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
    "Token authentication: `Authorization: Token <key>`; NIC creates a token with "
    "`campuscard api_token USERNAME`. The index is at /api/, this page at /api/docs/.",
    "VERSION": "1.0.0",
    # issue 19, item 12: Swagger UI's files come from drf-spectacular-sidecar, served by us (no CDN)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- i18n: Simplified Chinese first, English available -------------------------------------
LANGUAGE_CODE = "zh-hans"
# each language named in itself, in every UI language (issue 19, item 6: not "英语")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "ops" / "locale"]
TIME_ZONE = envstr("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

MEDIA_ROOT = VAR_DIR / "media"  # cardholder photos (R-CARD-8); never served publicly
# Uploaded lists and photo ZIPs (issue 20, items 4-5; docs/accountability.md "Upload limits"):
# refused before they are read whole, and read with their unpacked size, rows and cells capped.
IMPORT_MAX_BYTES = envint("IMPORT_MAX_BYTES", 16 * 1024 * 1024, minimum=1024)
IMPORT_MAX_UNPACKED_BYTES = envint("IMPORT_MAX_UNPACKED_BYTES", 64 * 1024 * 1024, minimum=1024)
IMPORT_MAX_ROWS = envint("IMPORT_MAX_ROWS", 100_000, minimum=1)
IMPORT_MAX_COLUMNS = envint("IMPORT_MAX_COLUMNS", 100, minimum=10)
IMPORT_MAX_CELL_CHARS = envint("IMPORT_MAX_CELL_CHARS", 500, minimum=64)
PHOTO_ZIP_MAX_BYTES = envint("PHOTO_ZIP_MAX_BYTES", 256 * 1024 * 1024, minimum=1024)
PHOTO_ZIP_MAX_UNPACKED_BYTES = envint("PHOTO_ZIP_MAX_UNPACKED_BYTES", 256 * 1024 * 1024, minimum=1024)
PHOTO_ZIP_MAX_ENTRIES = envint("PHOTO_ZIP_MAX_ENTRIES", 20_000, minimum=1)
# issue 18, Build 1: a repair request's fault photo (JPEG or PNG) at most this big
REPAIR_PHOTO_MAX_BYTES = envint("REPAIR_PHOTO_MAX_BYTES", 5 * 1024 * 1024, minimum=64 * 1024)
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
# Muster (issue 17): taps at an assembly point this long before a roll call starts count too —
# people reach the assembly point before anyone starts the muster
MUSTER_EARLY_TAP_S = envint("MUSTER_EARLY_TAP_S", 300, minimum=0)
# Emergency modes (issue 17, Build 2): a campus-wide lockdown waits for a second operator's
# approval (on by default); security staff — who alone pass a lockdown — are the active staff
# cards of these departments (codes)
EMERGENCY_CAMPUS_LOCKDOWN_APPROVAL = envbool("EMERGENCY_CAMPUS_LOCKDOWN_APPROVAL", True)
EMERGENCY_SECURITY_DEPARTMENTS = envlist("EMERGENCY_SECURITY_DEPARTMENTS", ["SEC"])
# R-SEC-2: default length of a personal-data grant (the NIC reviewer picks 1 h to 7 days)
PERSONAL_DATA_GRANT_HOURS = min(envint("PERSONAL_DATA_GRANT_HOURS", 24, minimum=1), 7 * 24)

# The library's SIP2 server (issue 18, Build 5; `campuscard sip2`, docs/configuration.md): where
# it listens, the logins of the library's circulation system (name:password, comma-separated;
# SIP2_ACCOUNTS_FILE for a secret file), the institution id (AO) it answers as, the wire encoding,
# whether every message must carry AY/AZ, whether the patron's full name is sent (R-SEC-2:
# masked unless the library's data agreement says full), the idle timeout, the failed-login pause.
SIP2_BIND = envstr("SIP2_BIND", "127.0.0.1")
SIP2_PORT = envint("SIP2_PORT", 6001, minimum=1)
SIP2_ACCOUNTS: dict[str, str] = {}
for _entry in envlist("SIP2_ACCOUNTS", []):
    _name, _sep, _password = _entry.partition(":")
    if not _sep or not _name.strip() or len(_password) < 8 or "|" in _entry:
        raise ImproperlyConfigured(
            "SIP2_ACCOUNTS: each account is name:password (a password of at least 8 characters, no | or ,)"
        )
    SIP2_ACCOUNTS[_name.strip()] = _password
SIP2_INSTITUTION = envstr("SIP2_INSTITUTION", "CAMPUSCARD")
SIP2_ENCODING = envstr("SIP2_ENCODING", "utf-8")
try:
    "".encode(SIP2_ENCODING)
except LookupError:
    raise ImproperlyConfigured(f"SIP2_ENCODING={SIP2_ENCODING!r} is not an encoding (utf-8, gb18030 …)") from None
SIP2_ERROR_DETECTION = envstr("SIP2_ERROR_DETECTION", "auto")
if SIP2_ERROR_DETECTION not in ("auto", "required"):
    raise ImproperlyConfigured(f"SIP2_ERROR_DETECTION={SIP2_ERROR_DETECTION!r} is not auto or required")
SIP2_PERSONAL_NAME = envstr("SIP2_PERSONAL_NAME", "masked")
if SIP2_PERSONAL_NAME not in ("masked", "full"):
    raise ImproperlyConfigured(f"SIP2_PERSONAL_NAME={SIP2_PERSONAL_NAME!r} is not masked or full")
SIP2_IDLE_TIMEOUT_S = envint("SIP2_IDLE_TIMEOUT_S", 600, minimum=1)
SIP2_LOGIN_FAILURE_DELAY_MS = envint("SIP2_LOGIN_FAILURE_DELAY_MS", 1000, minimum=0)

# --- Alert notifications (issue 16; docs/notifications.md) -----------------------------------
# The address operators open the system at: every message carries the alert's absolute link.
SITE_URL = (envstr("SITE_URL") or "http://127.0.0.1:8000").rstrip("/")
if not SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"SITE_URL={SITE_URL!r} must start with http:// or https://")
# How often `campuscard supervise` routes alerts to notifications and sends what is due
NOTIFY_S = envint("NOTIFY_S", 2, minimum=1)
# A failed send is retried after NOTIFY_RETRY_BASE_S, then twice as long each time (at most
# 10 minutes), up to NOTIFY_MAX_ATTEMPTS attempts in all
NOTIFY_MAX_ATTEMPTS = envint("NOTIFY_MAX_ATTEMPTS", 5, minimum=1)
NOTIFY_RETRY_BASE_S = envint("NOTIFY_RETRY_BASE_S", 10, minimum=1)
# E-mail through Django's SMTP backend
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set one")
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "campuscard@localhost")

# --- Scheduled work (issue 16, Build 4; `campuscard supervise`, docs/accountability.md) ------
# Times of day are local (TIME_ZONE); an empty one turns its job off. Each job's last run is on
# the NIC desk; a failed job, or one not successful for twice its interval, is an alert.
SCHEDULE_CHECK_S = envint("SCHEDULE_CHECK_S", 30, minimum=1)  # how often due jobs are looked for
# R-SEC-4: an encrypted backup into BACKUP_DIR every day, restored into a scratch database to
# prove it, then rotated: the newest of each of BACKUP_KEEP_DAILY days, and before them the
# newest of each of BACKUP_KEEP_WEEKLY ISO weeks
BACKUP_AT = parse_clock("BACKUP_AT", envstr("BACKUP_AT", "02:30"))
BACKUP_DIR = Path(envstr("BACKUP_DIR") or VAR_DIR / "backups")
BACKUP_KEEP_DAILY = envint("BACKUP_KEEP_DAILY", 7, minimum=1)
BACKUP_KEEP_WEEKLY = envint("BACKUP_KEEP_WEEKLY", 4, minimum=0)
# R-SEC-1: audit records past AUDIT_RETENTION_DAYS purged daily (the chain stays verifiable)
AUDIT_PURGE_AT = parse_clock("AUDIT_PURGE_AT", envstr("AUDIT_PURGE_AT", "03:30"))
# Reminders, daily: the July run to NIC in June (R-END-1); temporary cards ending within
# TEMP_CARD_REMIND_DAYS to their owning department (R-CARD-7, R-END-4)
REMINDERS_AT = parse_clock("REMINDERS_AT", envstr("REMINDERS_AT", "09:00"))
TEMP_CARD_REMIND_DAYS = envint("TEMP_CARD_REMIND_DAYS", 7, minimum=1)
# Reports for leadership (issue 18, Build 4): each morning, the day, week, month and semester that
# ended are mailed as XLSX to every operator holding the leader role (ops/reports/mailing.py)
REPORTS_MAIL_AT = parse_clock("REPORTS_MAIL_AT", envstr("REPORTS_MAIL_AT", "07:00"))

# Logs (issue 16, Build 5): LOG_FORMAT=json writes one JSON object per line for a log collector,
# with the request's or the reader event's id (ops/logs.py)
LOG_FORMAT = envstr("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in logs.FORMATS:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} is not one of {', '.join(logs.FORMATS)}")
LOGGING = logs.config(fmt=LOG_FORMAT, level=envstr("LOG_LEVEL", "INFO"))

# /metrics (issue 16, Build 3): Prometheus scrapes with `Authorization: Bearer METRICS_TOKEN` or
# from an address in METRICS_ALLOWED_NETWORKS; with neither set, every scrape is refused.
METRICS_TOKEN = envstr("METRICS_TOKEN") or ""
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters (e.g. `openssl rand -hex 24`)")
try:
    METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(n, strict=False) for n in envlist("METRICS_ALLOWED_NETWORKS", [])]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {exc}") from exc
# prometheus-client's multiprocess mode: the web workers of one host keep their figures (websocket
# clients per desk) in files here, summed at each scrape. The library reads the directory from the
# environment when it is first imported, which is after the settings.
PROMETHEUS_MULTIPROC_DIR = envstr("PROMETHEUS_MULTIPROC_DIR") or str(VAR_DIR / "metrics")
Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
