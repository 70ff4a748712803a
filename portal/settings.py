"""Settings of the portal, read from the environment.

Every setting that differs between machines comes from an environment variable,
parsed by the small typed helpers below, which fail loudly on a bad value
(the pattern of healthchecks' ``hc/settings.py``).
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

# OpenMP threads of LightGBM (and scikit-learn) sleep instead of spinning while they wait: with
# several busy processes on few cores (a Celery worker beside gunicorn and tests), spinning made
# one 300-tree fit take 108 s instead of 0.8 s on the 2-core machine. Read when libgomp loads, so
# it must be set before lightgbm is imported; Django loads these settings first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

BASE_DIR = Path(__file__).resolve().parent.parent


def envstr(name: str, default: str) -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: str) -> bool:
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: expected a boolean (true/false/1/0)")


def envint(name: str, default: str) -> int:
    value = os.environ.get(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected an integer") from None


def envpath(name: str, default: Path) -> Path:
    return Path(os.environ.get(name, str(default))).expanduser().resolve()


DEBUG = envbool("DEBUG", "false")
SECRET_KEY = envstr("SECRET_KEY", "dev-only-insecure-key-change-me" if DEBUG else "")
if not SECRET_KEY:
    # A local, non-DEBUG run still needs a key; generate one per machine and keep it.
    _key_file = BASE_DIR / "var" / "secret_key"
    _key_file.parent.mkdir(parents=True, exist_ok=True)
    if not _key_file.exists():
        import secrets

        _key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = [h.strip() for h in envstr("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h.strip()]

# Where the real sample data live (read-only) and where the portal writes products.
SHARED_DATA_DIR = envpath("SHARED_DATA_DIR", BASE_DIR.parent / "shared" / "data")
DATA_ROOT = envpath("DATA_ROOT", BASE_DIR / "var" / "data")
# The portal's public address and contact, written into every file it publishes (ACDD publisher_url,
# metadata_link, publisher_email); set both on a public deployment.
PORTAL_URL = envstr("PORTAL_URL", "http://127.0.0.1:8000").rstrip("/")
PORTAL_CONTACT_EMAIL = envstr("PORTAL_CONTACT_EMAIL", "webmaster@localhost")
# Subset downloads (README "Subset downloads"): requests up to SUBSET_SYNC_MAX_BYTES (uncompressed
# estimate) are answered directly; larger ones become Celery jobs up to SUBSET_JOB_MAX_BYTES; above
# that the API answers 413 and says how to split the request. Job results are deleted after
# SUBSET_JOB_TTL_HOURS. A running job whose worker has not written a heartbeat for
# SUBSET_JOB_STALE_SECONDS is marked failed (the worker died) and can be retried.
SUBSET_SYNC_MAX_BYTES = int(os.environ.get("SUBSET_SYNC_MAX_BYTES", 64 * 2**20))
SUBSET_JOB_MAX_BYTES = int(os.environ.get("SUBSET_JOB_MAX_BYTES", 8 * 2**30))
SUBSET_JOB_TTL_HOURS = float(os.environ.get("SUBSET_JOB_TTL_HOURS", 72))
SUBSET_JOB_HEARTBEAT_SECONDS = float(os.environ.get("SUBSET_JOB_HEARTBEAT_SECONDS", 5))
SUBSET_JOB_STALE_SECONDS = float(os.environ.get("SUBSET_JOB_STALE_SECONDS", 120))
# a temporary answer file older than this belongs to no request (a killed worker's): housekeeping removes it
SUBSET_TMP_MAX_AGE_SECONDS = float(os.environ.get("SUBSET_TMP_MAX_AGE_SECONDS", 3600))
# Largest single OPeNDAP (.dods) response; clients index smaller hyperslabs (portal/opendap).
OPENDAP_MAX_BYTES = int(os.environ.get("OPENDAP_MAX_BYTES", 2**30))
# Quotas (portal/limits.py): jobs queued or running at once and bytes downloaded in any 24 hours, per
# signed-in user (staff raise a user's own in the admin: Accounts > Quotas) or anonymous client (IP);
# rate limits per minute and front door (api, edr, opendap, files, pages, accounts), counted in Redis.
QUOTA_USER_CONCURRENT_JOBS = envint("QUOTA_USER_CONCURRENT_JOBS", "4")
QUOTA_ANON_CONCURRENT_JOBS = envint("QUOTA_ANON_CONCURRENT_JOBS", "2")
QUOTA_USER_BYTES_PER_DAY = envint("QUOTA_USER_BYTES_PER_DAY", str(50 * 2**30))
QUOTA_ANON_BYTES_PER_DAY = envint("QUOTA_ANON_BYTES_PER_DAY", str(2 * 2**30))
RATE_USER_PER_MINUTE = envint("RATE_USER_PER_MINUTE", "600")
RATE_ANON_PER_MINUTE = envint("RATE_ANON_PER_MINUTE", "120")
# Station / tower / basin observation subsets (/api/observations/) answer at most this many rows.
STATION_SUBSET_MAX_ROWS = int(os.environ.get("STATION_SUBSET_MAX_ROWS", 2_000_000))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "allauth",
    "allauth.account",
    "axes",
    "portal.accounts",
    "portal.catalog",
    "portal.api",
    "portal.subsets",
    "ingestion",
    "products",
]

# CorsMiddleware before anything that can answer (WhiteNoise, CommonMiddleware); WhiteNoise serves
# static files pre-compressed, so GZipMiddleware comes after it and before every middleware that
# reads or writes bodies (portal.middleware.GZipMiddleware: text/JSON/CSV only, never a range).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.accounts.middleware.TokenAuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last, as django-axes asks: it turns a lockout signalled by its backend into the lockout answer
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "portal.wsgi.application"

DATABASE_URL = envstr("DATABASE_URL", "postgis://postgres@127.0.0.1:5432/hydroportal")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] != "django.contrib.gis.db.backends.postgis":
    raise ImproperlyConfigured(f"DATABASE_URL={DATABASE_URL!r}: expected a postgis:// URL (PostgreSQL with PostGIS)")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Accounts (django-allauth): sign-up with e-mail verification at /accounts/signup/, login at
# /accounts/login/, password reset and change; e-mail is the login. django-axes' backend comes
# first so that repeated failures lock out whatever the entry (login page, admin, HTTP Basic).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Hydrology data portal] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if envbool("BEHIND_TLS", "false") else "http"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "accounts:profile"
# Mail (verification, password reset, application decisions) through Django's e-mail backend: files
# under var/mail by default (read the links there on a machine without a mail server), SMTP by
# setting EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST/PORT/USER/PASSWORD.
EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = envpath("EMAIL_FILE_PATH", BASE_DIR / "var" / "mail")
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", "25")
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "false")
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", PORTAL_CONTACT_EMAIL)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Login protection (django-axes): AXES_FAILURE_LIMIT failures from one client for one user name lock
# that pair out for AXES_COOLOFF_MINUTES; the login page, the admin and HTTP Basic all count.
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = envint("AXES_COOLOFF_MINUTES", "15") / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_USERNAME_FORM_FIELD = "login"  # allauth's login form names the e-mail field 'login'

# Shared cache in Redis: rate-limit counters (django-ratelimit) are seen by every web worker.
CACHE_URL = envstr("CACHE_URL", "redis://127.0.0.1:6379/1")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                      "KEY_PREFIX": envstr("CACHE_KEY_PREFIX", "portal"),
                      "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2}}}

# Bilingual site: Simplified Chinese and English, switchable.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Front-end libraries come from the npm registry (package.json) and are served by the project.
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/leaflet", NODE_MODULES / "leaflet" / "dist"),
    ("vendor/chart.js", NODE_MODULES / "chart.js" / "dist"),
    ("vendor/world-atlas", NODE_MODULES / "world-atlas"),
    ("vendor/topojson-client", NODE_MODULES / "topojson-client" / "dist"),
    ("vendor/leaflet-geoman", NODE_MODULES / "@geoman-io" / "leaflet-geoman-free" / "dist"),
]
# collectstatic (run by `make setup`) writes content-hashed copies with gzip twins and the manifest
# that {% static %} reads; WhiteNoise serves hashed names with a ten-year immutable Cache-Control.
# Without the manifest (collectstatic never ran) pages cannot be rendered with DEBUG off.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# CORS (django-cors-headers): notebooks and web clients on other origins may read the API (EDR
# included), OPeNDAP and published file downloads; never with the user's cookies or credentials.
CORS_URLS_REGEX = r"^/(api|opendap)/.*$|^/datasets/[^/]+/versions/[0-9]+/files/[^/]+$"
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ("GET", "HEAD", "OPTIONS", "POST")
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "range", "if-range", "if-none-match",
                      "if-modified-since", "x-requested-with")
CORS_EXPOSE_HEADERS = ("Content-Disposition", "Content-Range", "Accept-Ranges", "Content-Length", "ETag", "Location",
                       "Last-Modified")

CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", "false")
CELERY_BEAT_SCHEDULE = {"subset-housekeeping": {"task": "subsets.housekeeping", "schedule": 300.0}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["portal.accounts.authentication.HeaderAuthentication",
                                       "rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # ?format= is not DRF's renderer switch here (a 404 for format=csv): the subset front doors name
    # their format f (as OGC APIs do) and refuse format, pointing to f (portal/subsets/params.py)
    "URL_FORMAT_OVERRIDE": None,
}
# OpenAPI 3 schema at /api/schema/, Swagger UI at /api/docs/ (assets from drf-spectacular-sidecar, no CDN)
SPECTACULAR_SETTINGS = {
    "TITLE": "Land-surface hydrology data portal API",
    "DESCRIPTION": "Dataset records (TPDC schema), subsets, point and area series of published grids, "
                   "asynchronous subset jobs. OGC API-EDR is at /api/edr/, OPeNDAP at /opendap/.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}

# Debian 12 ships GDAL 3.6, which cannot block file/network access when parsing spatial
# references; the portal only builds geometries from numbers and GEOS-parsed WKT/GeoJSON.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
