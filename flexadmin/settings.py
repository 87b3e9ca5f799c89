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

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Core -------------------------------------------------------------------------
SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me-in-production-0123456789")
DEBUG = env.bool("DEBUG", default=True)
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
    "accounts",
    "billing",
    "reporting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a signed-in user unless its view says otherwise.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
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
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a writer instead of failing at once with "database is locked"; IMMEDIATE
    # transactions take the write lock at BEGIN, which is what serialises two charges of a
    # team here (SQLite has no row locks: select_for_update is a no-op).
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery: Redis when REDIS_URL is set, in-process otherwise -------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
# Without a broker the tasks run where they are called, so nothing waits for a worker.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
# A broker that does not answer must not hold a web request: connect and publish fail fast.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
# The beat schedule lives here and nowhere else (later issues add the jobs).
CELERY_BEAT_SCHEDULE: dict = {}

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
AXES_VERBOSE = False

# --- Security --------------------------------------------------------------------------
# Off by default so that `make run` works over plain http; production turns it on.
FLEX_SECURE_COOKIES = env.bool("FLEX_SECURE_COOKIES", default=False)
SESSION_COOKIE_SECURE = FLEX_SECURE_COOKIES
CSRF_COOKIE_SECURE = FLEX_SECURE_COOKIES
SECURE_SSL_REDIRECT = FLEX_SECURE_COOKIES
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365 if FLEX_SECURE_COOKIES else 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if FLEX_SECURE_COOKIES else None
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 12
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

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
FLEX_INVITATION_DAYS = env.int("FLEX_INVITATION_DAYS", default=7)
FLEX_CSV_MAX_ROWS = env.int("FLEX_CSV_MAX_ROWS", default=2000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# Absolute links in e-mails (invitations, password resets sent by jobs).
FLEX_SITE_URL = env("FLEX_SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
