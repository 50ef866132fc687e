"""LinkPoint settings: one module, every deployment knob read from the environment.

Safe defaults run the product on SQLite with the django-q2 ORM broker and the
sandbox emulators, so a fresh machine needs no service at all.
"""

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from linkpoint.dev_defaults import DEV_OAUTH_CLIENT, DEV_SECRET_KEY_PREFIX

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", False)
# A development key is fine for DEBUG; production must set SECRET_KEY (check --deploy says so).
SECRET_KEY = os.environ.get("SECRET_KEY", f"{DEV_SECRET_KEY_PREFIX}-change-me-" + "x" * 20)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# The sandbox emulates Microsoft and Salesforce; it is never on in production.
SANDBOX_ENABLED = envbool("SANDBOX_ENABLED", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_htmx",
    "template_partials",
    "django_q",
    "linkpoint",
    "accounts",
    "orgs",
    "policy",
    "connections",
    "syncengine",
    "sandbox",
    "sandbox.microsoft",
    "sandbox.salesforce",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "linkpoint.middleware.SecurityHeadersMiddleware",
    "linkpoint.middleware.SandboxGateMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.UserTimezoneMiddleware",
    "linkpoint.middleware.HtmxLoginRedirectMiddleware",
]

ROOT_URLCONF = "linkpoint.urls"
WSGI_APPLICATION = "linkpoint.wsgi.application"

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
                "orgs.context_processors.orgs",
            ],
        },
    },
]

# --- Databases ---------------------------------------------------------------
# default: the product. sandbox: the emulated Microsoft/Salesforce servers, kept
# in their own database so their writes never share the product's transaction
# (a product rollback after a remote write must leave that write in place).
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    _sandbox = dj_database_url.parse(
        os.environ.get("SANDBOX_DATABASE_URL", DATABASE_URL), conn_max_age=60
    )
    if "SANDBOX_DATABASE_URL" not in os.environ and _sandbox["ENGINE"].endswith("sqlite3"):
        _sandbox["NAME"] = str(Path(_sandbox["NAME"]).with_suffix(".sandbox.sqlite3"))
    elif "SANDBOX_DATABASE_URL" not in os.environ:
        _sandbox["NAME"] = f"{_sandbox['NAME']}_sandbox"
    DATABASES["sandbox"] = _sandbox
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        },
        "sandbox": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "sandbox.sqlite3",
            "OPTIONS": {"timeout": 20},
        },
    }
for _db in DATABASES.values():
    _db.setdefault("TEST", {})
    if _db["ENGINE"].endswith("sqlite3"):
        # WAL lets the web process read while a worker writes; synchronous=NORMAL
        # (safe in WAL: a crash loses no committed data, a power cut at most the
        # last commits) stops every commit waiting on an fsync — a sync run
        # commits per batch, hundreds of times.
        _db.setdefault("OPTIONS", {}).setdefault(
            "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"
        )
DATABASES["sandbox"]["TEST"]["DEPENDENCIES"] = []
DATABASE_ROUTERS = ["sandbox.router.SandboxRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, broker -----------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # parallel test workers share one Redis; keep their rate-limit counters apart
            "KEY_PREFIX": os.environ.get("PYTEST_XDIST_WORKER", ""),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# The minute dispatcher's own qcluster (syncengine/dispatch.py): its tick schedule targets this
# cluster, whose broker queue holds nothing but ticks, so a tick never waits behind the runs it
# enqueued. Start it with `Q_CLUSTER_NAME=<this name> manage.py qcluster` (bin/prod-local), on one
# machine or several (concurrent ticks are safe). Empty: no such cluster, the run clusters tick
# too (`make run`, one qcluster).
SYNC_DISPATCH_CLUSTER = os.environ.get("SYNC_DISPATCH_CLUSTER", "")
_q_workers = int(os.environ.get("Q_WORKERS", "2"))
Q_CLUSTER = {
    # The site: the run queue every run qcluster shares and the tasks' signing salt, the same for
    # every process of the site (tests and the benchmarks use their own). A qcluster started with
    # Q_CLUSTER_NAME set to another name serves that queue instead (django-q2's multiple queues).
    "name": os.environ.get("Q_SITE_NAME", "linkpoint"),
    "workers": _q_workers,
    "timeout": 600,
    "retry": 720,  # retry must exceed timeout, or a slow task runs twice
    "max_attempts": 3,
    # A cluster takes one task ahead per worker: what waits is in the broker, where the
    # dispatcher sees it (it subtracts the run queue's size from each tick's budget).
    "queue_limit": _q_workers,
    "catch_up": False,
    "label": "Task queue",
    # No row per successful task: a run's outcome is its SyncRun. django-q2's default (keep
    # 250) read and locked all 250 rows and deleted the oldest after every task: about 500
    # rows read per run, and each worker's result save waited on the previous one's lock.
    # Failed tasks are still saved (the admin's "Failed tasks").
    "save_limit": -1,
    # django-q2 reads this whenever Q_CLUSTER_NAME names another queue (it must exist then).
    "ALT_CLUSTERS": {
        SYNC_DISPATCH_CLUSTER or "linkpoint-dispatch": {
            # One tick at a time per dispatcher cluster; a failed tick is not retried (the next
            # minute's is the retry).
            "workers": int(os.environ.get("Q_DISPATCH_WORKERS", "1")),
            "queue_limit": 1,
            "timeout": 300,
            "retry": 360,
            "max_attempts": 1,
        },
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# The dispatcher's per-tick budget (syncengine/dispatch.py) is measured: the runs that finished
# in the last minutes, less what waits in the run queue. These settings are the fallback before
# there is any history: SYNC_DISPATCH_CAPACITY runs a minute, or (0) Q_WORKERS × SYNC_CLUSTERS
# (run qclusters on all machines) × SYNC_RUNS_PER_WORKER_MINUTE. SYNC_CLUSTERS × Q_WORKERS is
# also the worker count the measured run time is spread over when the workers have room.
SYNC_DISPATCH_CAPACITY = int(os.environ.get("SYNC_DISPATCH_CAPACITY", "0"))
SYNC_CLUSTERS = int(os.environ.get("SYNC_CLUSTERS", "1"))
SYNC_RUNS_PER_WORKER_MINUTE = int(os.environ.get("SYNC_RUNS_PER_WORKER_MINUTE", "6"))

# Requests one run may have in flight per side (connections/clients.py; 1 = one after another).
# Outlook counts mailbox slots: Graph allows 4 concurrent requests per app and mailbox and a
# $batch takes up to 4 of them. Salesforce limits only requests running 20 s or longer, so its
# figure is our own cap. "outlook,salesforce" in the environment, e.g. SYNC_CONCURRENCY=1,1.
_conc = [int(x) for x in os.environ.get("SYNC_CONCURRENCY", "4,4").split(",") if x.strip()]
SYNC_CONCURRENCY = {"outlook": _conc[0], "salesforce": _conc[-1]}
# Databases a run's worker threads may use through the run thread's connection: the in-process
# emulators' (sandbox/transport.py); the product's own stays on the run's thread.
SYNC_WORKER_DATABASES = ["sandbox"]
# How long a stored sync plan (a preview) can be applied; a scheduled task then removes it.
SYNC_PLAN_TTL = timedelta(hours=float(os.environ.get("SYNC_PLAN_TTL_HOURS", "24")))
# Token forecast (org dashboard): a Microsoft refresh token lapses after 90 days without use;
# a Salesforce one follows the connected app's "Refresh Token Policy", which only the
# customer's Salesforce admin sees. Salesforce's own default is "valid until revoked";
# an org can override both values on its dashboard settings.
SALESFORCE_REFRESH_TOKEN_POLICY = os.environ.get("SALESFORCE_REFRESH_TOKEN_POLICY", "until_revoked")
SALESFORCE_REFRESH_TOKEN_DAYS = int(os.environ.get("SALESFORCE_REFRESH_TOKEN_DAYS", "90"))

# --- Auth ----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
# Mandatory: an address counts only once its owner opened allauth's link. It is also what lets
# allauth hide whether an address is registered at signup (it mails the owner instead of saying
# "already registered"); with "optional" and unique e-mails it cannot.
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[LinkPoint] "
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "LinkPoint"

# --- E-mail --------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "LinkPoint <noreply@linkpoint.test>")

# --- Tokens ----------------------------------------------------------------------
# Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
# The development fallback is derived from SECRET_KEY so a demo works out of the box.
TOKEN_ENCRYPTION_KEYS = envlist("TOKEN_ENCRYPTION_KEYS")

# --- Remote services ------------------------------------------------------------
# Production points at Microsoft and Salesforce; the sandbox at its own hosts.
# The fallbacks are the sandbox's development client (check --deploy refuses them).
MICROSOFT_CLIENT_ID = os.environ.get(
    "MICROSOFT_CLIENT_ID", DEV_OAUTH_CLIENT["MICROSOFT_CLIENT_ID"]
)
MICROSOFT_CLIENT_SECRET = os.environ.get(
    "MICROSOFT_CLIENT_SECRET", DEV_OAUTH_CLIENT["MICROSOFT_CLIENT_SECRET"]
)
SALESFORCE_CLIENT_ID = os.environ.get(
    "SALESFORCE_CLIENT_ID", DEV_OAUTH_CLIENT["SALESFORCE_CLIENT_ID"]
)
SALESFORCE_CLIENT_SECRET = os.environ.get(
    "SALESFORCE_CLIENT_SECRET", DEV_OAUTH_CLIENT["SALESFORCE_CLIENT_SECRET"]
)
SALESFORCE_API_VERSION = "62.0"
if SANDBOX_ENABLED:
    MICROSOFT_AUTHORITY_HOST = "https://login.sandbox.test"
    MICROSOFT_GRAPH_URL = "https://graph.sandbox.test/v1.0"
    SALESFORCE_LOGIN_URL = "https://login.salesforce.sandbox.test"
else:
    MICROSOFT_AUTHORITY_HOST = os.environ.get(
        "MICROSOFT_AUTHORITY_HOST", "https://login.microsoftonline.com"
    )
    MICROSOFT_GRAPH_URL = os.environ.get("MICROSOFT_GRAPH_URL", "https://graph.microsoft.com/v1.0")
    SALESFORCE_LOGIN_URL = os.environ.get("SALESFORCE_LOGIN_URL", "https://login.salesforce.com")
MICROSOFT_TENANT = os.environ.get("MICROSOFT_TENANT", "common")
# Emulated latency per side (sandbox/latency.py), off unless set: "150" or "150,30,2" gives
# every side request_ms, jitter_ms, op_ms (per request inside a $batch or a collection).
_lat = [float(x) for x in os.environ.get("SANDBOX_LATENCY_MS", "").split(",") if x.strip()]
SANDBOX_LATENCY = (
    {side: dict(zip(("request_ms", "jitter_ms", "op_ms"), _lat, strict=False))
     for side in ("outlook", "salesforce")} if _lat else None
)
# The emulated services' concurrency limits (sandbox/limits.py), off unless set: "on" gives the
# vendors' documented values (Graph 4 per mailbox, Salesforce 25 requests of 20 s or longer per
# org; True means those); a JSON object gives its own, e.g. {"outlook": {"concurrent_per_mailbox": 4}}.
_limits = os.environ.get("SANDBOX_LIMITS", "").strip()
SANDBOX_LIMITS = (True if _limits.lower() in ("on", "1", "true", "yes")
                  else json.loads(_limits) if _limits else None)
# The sandbox served by a process of its own (sandbox.transport.hosts_application, e.g.
# bench/sandbox_server.py under gunicorn): its base URL; empty = the in-process transport.
# "outlook=<url>,salesforce=<url>" serves each service from a process of its own.
SANDBOX_SERVER_URL = os.environ.get("SANDBOX_SERVER_URL", "")
# Dotted path of a zero-argument callable returning the requests.Session every
# remote client uses; the sandbox's mounts its in-process transport, or sends over HTTP
# to SANDBOX_SERVER_URL.
HTTP_SESSION_FACTORY = os.environ.get(
    "HTTP_SESSION_FACTORY",
    ("sandbox.transport.sandbox_http_session" if SANDBOX_SERVER_URL else "sandbox.transport.sandbox_session")
    if SANDBOX_ENABLED else "requests.Session",
)

# --- Static, i18n ------------------------------------------------------------------
STATIC_URL = "static/"
# Where collectstatic writes (and whitenoise serves from); a deployment may put it elsewhere.
STATIC_ROOT = os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security (production values switch on with DEBUG off) --------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # HTMX reads the token from hx-headers, not the cookie
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy and Permissions-Policy: linkpoint.middleware.SecurityHeadersMiddleware.
# Forms may post to our pages and, through the Connect buttons' redirects, to the
# Microsoft and Salesforce sign-in; add other hosts a sign-in redirects through
# (login.salesforce.com sends people on to their My Domain).
CSP_FORM_ACTION_EXTRA = envlist("CSP_FORM_ACTION_EXTRA", "https://*.my.salesforce.com")
if envbool("SECURE_PRODUCTION", False):
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "client_error_without_traceback": {
            "()": "linkpoint.logfilters.ClientErrorWithoutTraceback"
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Replaces Django's default handlers of "django": its DEBUG-only console
        # printed every line a second time next to ours (records propagate to root).
        "django": {"handlers": ["mail_admins"], "level": "INFO", "propagate": True},
        # 403/404 are one warning line without traceback; 500s keep theirs.
        "django.request": {"filters": ["client_error_without_traceback"]},
        "django.db.backends": {"level": "WARNING"},
    },
}
