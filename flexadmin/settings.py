"""FlexAdmin settings: one module, every value read from the environment.

The defaults are safe for a laptop: SQLite in the project folder, e-mail printed to the
console, Celery tasks run in-process. Production sets ``DATABASE_URL``, ``REDIS_URL``,
``SECRET_KEY``, ``DEBUG=0``, ``ALLOWED_HOSTS``, ``EMAIL_URL`` and
``FLEX_SECURE_COOKIES=1`` (see docs/operations.md).
"""

import warnings
from datetime import datetime, timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Core -------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=True)
# A development key only while DEBUG is on: with DEBUG off the app refuses to start without
# one of its own (`make run` keeps a random one in .local-secret-key).
SECRET_KEY = env("SECRET_KEY", default="django-insecure-dev-only-key-for-debug-mode" if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY (long and random) when DEBUG is off; see docs/operations.md.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tables2",
    "django_filters",
    "axes",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our static files, no CDN
    "core",
    "accounts",
    "billing",
    "reporting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header on every response, static files included (see below).
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a signed-in user unless its view says otherwise.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # A signed-in session is saved (its expiry moved on) at most once an hour while used.
    "accounts.middleware.SessionRefreshMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Remembers the client address for the audit trail ("from where").
    "accounts.middleware.AuditContextMiddleware",
    # django-axes must come last: it turns repeated failed sign-ins into a lockout.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "flexadmin.urls"
WSGI_APPLICATION = "flexadmin.wsgi.application"

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
                "accounts.context_processors.portal",
            ],
        },
    },
]

# --- Database: SQLite by default, PostgreSQL (psycopg 3) through DATABASE_URL ---------
# An empty DATABASE_URL counts as unset: the SQLite file.
DATABASES = {
    "default": env.db_url_config(env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections: a web or worker thread keeps its connection for a minute instead of
# opening one per request (on PostgreSQL that is a new server process each time), and checks
# it before reuse, so a restarted database costs one failed check, not an error page.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("FLEX_DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a writer instead of failing at once with "database is locked"; IMMEDIATE
    # transactions take the write lock at BEGIN, which is what serialises two charges of a
    # team here (SQLite has no row locks: select_for_update is a no-op).
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery: Redis when REDIS_URL is set, in-process otherwise -------------
REDIS_URL = env("REDIS_URL", default="")
# Prepended to every Redis key and channel this installation uses (broker, results, cache), so
# that two installations or two CI runs can share one Redis database without seeing, or
# deleting, each other's keys. Empty: keys as Celery and Django name them.
FLEX_REDIS_PREFIX = env("FLEX_REDIS_PREFIX", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": FLEX_REDIS_PREFIX,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_RESULT_EXPIRES = timedelta(days=1)
# Without a broker the tasks run where they are called, so nothing waits for a worker.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
# One queue; FLEX_CELERY_QUEUE lets two installations (or a test run) share one Redis.
CELERY_TASK_DEFAULT_QUEUE = env("FLEX_CELERY_QUEUE", default="celery")
# A broker that does not answer must not hold a web request: connect and publish fail fast
# (enqueue_on_commit publishes once, without retrying, and logs a failure; the schedule
# picks up whatever a lost message would have done).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True  # a worker or beat started before Redis waits for it
# Late acknowledgement is switched on per task, only for the idempotent jobs (billing.tasks):
# a worker that dies mid-job leaves the message unacknowledged and Redis hands it out again
# after the visibility timeout. E-mail tasks are acknowledged on receipt (at most once).
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a worker holds one job at a time: nothing waits behind a long one
# The time limits bound every job; the visibility timeout must be longer than the longest
# job (FLEX_CHECK_LEDGER_TIME_LIMIT), the longest retry back-off (10 minutes) and any countdown,
# or Redis would hand a message still being worked on (or waiting for its retry) to a
# second worker.
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
FLEX_CHECK_LEDGER_TIME_LIMIT = 60 * 60
FLEX_CELERY_VISIBILITY_TIMEOUT = env.int("FLEX_CELERY_VISIBILITY_TIMEOUT", default=2 * 60 * 60)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    # Publishing tries to connect twice, straight away, instead of retrying for seconds: a
    # refused connection costs milliseconds. (Workers and beat keep reconnecting on their own.)
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
    "visibility_timeout": FLEX_CELERY_VISIBILITY_TIMEOUT,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
if FLEX_REDIS_PREFIX:
    # kombu prefixes the queues, its bookkeeping keys and the pub/sub channels (so remote
    # control, e.g. a ping, reaches only this installation's workers); the result backend
    # prefixes its celery-task-meta-* keys.
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = FLEX_REDIS_PREFIX
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS["global_keyprefix"] = FLEX_REDIS_PREFIX

# The beat schedule lives here and nowhere else; docs/operations.md says what each job does
# when Redis or the worker is down. Every job catches up on whatever it missed, so a run
# skipped or lost costs only delay. ``expires`` drops a run that waited in the queue past
# the next one (a worker back after a long outage runs each job once, not once per tick).
CELERY_BEAT_SCHEDULE: dict = {
    # Every 10 minutes: close packs whose year is over and write what they still held as an
    # expiry entry. Paying never uses an expired pack anyway; this makes balances, reports
    # and the ledger say so (ledger_check flags a pack left open for more than an hour).
    "expire-packs": {
        "task": "billing.expire_packs",
        "schedule": crontab(minute="*/10"),
        "options": {"expires": 9 * 60},
    },
    # Hourly at :05: close legacy cloud credits past the cutoff (FLEX_CLOUD_CREDITS_EXPIRE_AT).
    # After the cutoff has passed once this finds nothing; it stays for late grants and restores.
    "expire-cloud-credits": {
        "task": "billing.expire_cloud_credits",
        "schedule": crontab(minute=5),
        "options": {"expires": 55 * 60},
    },
    # Hourly at :20: remind admins and the reseller's sales reps of tokens expiring within
    # 90, 30 and 7 days, once per pack and threshold; hourly so a threshold is announced
    # within the hour it is reached.
    "send-expiry-reminders": {
        "task": "billing.send_expiry_reminders",
        "schedule": crontab(minute=20),
        "options": {"expires": 55 * 60},
    },
    # Every 15 minutes: alert admins when a team's available tokens fall below its threshold
    # (once per crossing, again only after a recovery). Usage arrives all day.
    "check-low-balances": {
        "task": "billing.check_low_balances",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 14 * 60},
    },
    # Nightly at 02:30 UTC, when usage is lowest: the full ledger check (domain.md "a ledger
    # check anyone can run"); e-mails platform staff when anything does not add up.
    "check-ledger": {
        "task": "billing.check_ledger",
        "schedule": crontab(hour=2, minute=30),
        "options": {"expires": 12 * 60 * 60},
    },
    # Every 10 minutes: e-mail notices whose own e-mail task was lost (Redis or the worker was
    # down when it should have gone out), up to two days late.
    "send-pending-notification-emails": {
        "task": "accounts.send_pending_notification_emails",
        "schedule": crontab(minute="*/10"),
        "options": {"expires": 9 * 60},
    },
}

# --- Authentication ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "accounts:start"
LOGOUT_REDIRECT_URL = None  # show registration/logged_out.html: "You are signed out"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24  # one day

# Sign-in throttling (django-axes): five failures for one e-mail from one address lock
# that pair out for 15 minutes; a success resets the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The sign-in form posts the e-mail as "username" (Django's AuthenticationForm).
AXES_USERNAME_FORM_FIELD = "username"
# One identity for the lockout and for sign-in: the normalised e-mail (finding: case variants escaped the count).
AXES_USERNAME_CALLABLE = "accounts.access.sign_in_identity"
AXES_VERBOSE = False

# --- Security --------------------------------------------------------------------------
# Off by default so that `make run` works over plain http; production turns it on.
FLEX_SECURE_COOKIES = env.bool("FLEX_SECURE_COOKIES", default=False)
SESSION_COOKIE_SECURE = FLEX_SECURE_COOKIES
CSRF_COOKIE_SECURE = FLEX_SECURE_COOKIES
SECURE_SSL_REDIRECT = FLEX_SECURE_COOKIES
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365 if FLEX_SECURE_COOKIES else 0
# Behind HTTPS every subdomain is HTTPS too, and the site may join browsers' preload list;
# an installation whose subdomains are not all HTTPS turns these off.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("FLEX_HSTS_INCLUDE_SUBDOMAINS", default=FLEX_SECURE_COOKIES)
SECURE_HSTS_PRELOAD = env.bool("FLEX_HSTS_PRELOAD", default=FLEX_SECURE_COOKIES)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if FLEX_SECURE_COOKIES else None
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 12
# A session in use is saved again (its 12 hours start over) at most this often, not on every
# page: signed out 11 to 12 hours after the last page (accounts.middleware.SessionRefreshMiddleware).
FLEX_SESSION_REFRESH = 60 * 60
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

# --- Content-Security-Policy (django-csp; docs/operations.md "Content-Security-Policy") ---
# Everything comes from this site: no CDN, no inline script, no inline style, no
# on*="" handler, no javascript: link. Behaviour lives in static/js/portal.js (wired up
# through data attributes), looks in static/css/portal.css. A page that truly needs an
# exception gets it on its own view with django-csp's decorators, never here: the API docs
# page (flexadmin/api_urls.py) lets its one inline script run through a per-request nonce.
# To allow a new source, add it to the one directive that needs it (e.g. "img-src") and
# say why in a comment.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # data: for the small icons inside the admin's and Swagger UI's CSS
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],  # like X_FRAME_OPTIONS = "DENY"
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    },
}

# --- E-mail: printed to the console unless EMAIL_URL says otherwise ----------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="FlexAdmin <no-reply@flexadmin.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Internationalisation: times are stored in UTC, shown in the team's time zone ---------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files: served by whitenoise, nothing from a CDN ------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# In development whitenoise serves straight from the finders; the collected folder need not exist.
warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Tables ----------------------------------------------------------------------------
DJANGO_TABLES2_TEMPLATE = "_partials/table.html"
DJANGO_TABLES2_PAGE_RANGE = 7

# --- FlexAdmin business settings (docs: ../shared api.md "Settings") --------------------
FLEX_CLOUD_CREDITS_EXPIRE_AT = datetime.fromisoformat(
    env("FLEX_CLOUD_CREDITS_EXPIRE_AT", default="2023-03-29T00:00:00+00:00").replace("Z", "+00:00")
)
FLEX_MAX_EVENT_AGE_HOURS = env.int("FLEX_MAX_EVENT_AGE_HOURS", default=48)
FLEX_PACK_TERM_MONTHS = env.int("FLEX_PACK_TERM_MONTHS", default=12)
# Teams the expiry jobs close in one transaction (docs/operations.md, "Background jobs").
FLEX_EXPIRY_TEAMS_PER_TRANSACTION = env.int("FLEX_EXPIRY_TEAMS_PER_TRANSACTION", default=100)
FLEX_INVITATION_DAYS = env.int("FLEX_INVITATION_DAYS", default=7)
FLEX_CSV_MAX_ROWS = env.int("FLEX_CSV_MAX_ROWS", default=2000)

# --- HTTP API (docs/api.md; ../shared api.md) ------------------------------------------------
# Keys only: no session authentication, so no CSRF and no sign-in page for the API.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.authentication.HasApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.authentication.ApiKeyRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# Requests per API key (DRF rate syntax: N/second, N/minute, N/hour, N/day); over it: 429 + Retry-After.
FLEX_API_THROTTLE_RATE = env("FLEX_API_THROTTLE_RATE", default="1200/minute")
# A full batch of 1,000 usage events is about 250 kB; anything far larger is refused (400).
FLEX_API_MAX_BODY_BYTES = env.int("FLEX_API_MAX_BODY_BYTES", default=4 * 1024 * 1024)
# Django's own cap on a request body (2.5 MB by default) would fire first, with a bare 400:
# it is set past the API's limit, so the API's parser answers with its documented error.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(FLEX_API_MAX_BODY_BYTES + 1024, 2_621_440)

SPECTACULAR_SETTINGS = {
    "TITLE": "FlexAdmin API",
    "DESCRIPTION": (
        "Report usage, record purchases, manage members and Flex assignments, read balances and reports. "
        "Authenticate with `Authorization: Bearer <key>` (a team key or a reseller key). Amounts are strings "
        "with two decimals; times are ISO 8601 with an offset. Every error is "
        '`{"error": {"code", "message", "fields"}}`. A walk-through is in docs/api.md.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_ADD_EXPLICIT_BLANK_NULL_CHOICE": False,
    "TAGS": [
        {"name": "teams", "description": "Customer teams of a reseller (reseller key)."},
        {"name": "packs", "description": "Token packs and legacy cloud credits (recorded with a reseller key)."},
        {"name": "members", "description": "People, roles and Flex assignments (team key)."},
        {"name": "usage", "description": "Usage events reported by products, and refunds (team key)."},
        {"name": "balance", "description": "Balance and ledger."},
        {"name": "reports", "description": "Usage reports, read from the rollups (team key)."},
        {"name": "rates", "description": "The rate sheet in force (any key)."},
    ],
    # Several fields are called "status"; each set of values gets a name of its own.
    "ENUM_NAME_OVERRIDES": {
        "PackStatusEnum": "billing.api.PACK_STATUSES",
        "UsageStatusEnum": "billing.api.OUTCOME_STATUSES",
        "ChargeStatusEnum": "billing.api.CHARGE_STATUSES",
        "UsageErrorStatusEnum": "billing.api.ERROR_STATUSES",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# Absolute links in e-mails (invitations, password resets sent by jobs).
FLEX_SITE_URL = env("FLEX_SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
