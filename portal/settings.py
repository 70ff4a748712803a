"""Settings of the portal, read from the environment.

Every setting that differs between machines comes from an environment variable,
parsed by the small typed helpers below, which fail loudly on a bad value
(the pattern of healthchecks' ``hc/settings.py``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

# OpenMP threads of LightGBM (and scikit-learn) sleep instead of spinning while they wait: with
# several busy processes on few cores (a Celery worker beside gunicorn and tests), spinning made
# one 300-tree fit take 108 s instead of 0.8 s on the 2-core machine. Read when libgomp loads, so
# it must be set before lightgbm is imported; Django loads these settings first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

BASE_DIR = Path(__file__).resolve().parent.parent


def envstr(name: str, default: str) -> str:
    """Environment variable ``name`` as text, ``default`` when unset."""
    return os.environ.get(name, default)


def envbool(name: str, default: str) -> bool:
    """Environment variable ``name`` as a boolean (1/true/yes/on; 0/false/no/off or empty); ImproperlyConfigured otherwise."""
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: expected a boolean (true/false/1/0)")


def envint(name: str, default: str) -> int:
    """Environment variable ``name`` as an integer; ImproperlyConfigured naming the variable otherwise."""
    value = os.environ.get(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected an integer") from None


def envfloat(name: str, default: str) -> float:
    """Environment variable ``name`` as a float; ImproperlyConfigured naming the variable otherwise."""
    value = os.environ.get(name, default)
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected a number") from None


POSTGIS_ENGINE = "django.contrib.gis.db.backends.postgis"
DATABASE_SCHEMES = ("postgis", "postgres", "postgresql")
"""URL schemes of a PostgreSQL database: ``postgis://`` and the ``postgres://``/``postgresql://`` that
hosting services print; all of them use the PostGIS backend."""


def envdatabase(name: str, default: str, **options) -> dict:
    """The Django ``DATABASES`` entry of the URL in environment variable ``name`` (PostGIS backend).

    Raises
    ------
    ImproperlyConfigured
        The URL's scheme is not one of :data:`DATABASE_SCHEMES`.
    """
    url = os.environ.get(name, default)
    scheme = urlsplit(url).scheme
    if scheme not in DATABASE_SCHEMES:
        raise ImproperlyConfigured(
            f"{name}={url!r}: expected a postgis://, postgres:// or postgresql:// URL (PostgreSQL with PostGIS)"
        )
    return dj_database_url.parse(url, engine=POSTGIS_ENGINE, **options)


def envpath(name: str, default: Path) -> Path:
    """Environment variable ``name`` as an absolute path (``~`` expanded), ``default`` when unset."""
    return Path(os.environ.get(name, str(default))).expanduser().resolve()


DEBUG = envbool("DEBUG", "false")
SECRET_KEY = envstr("SECRET_KEY", "dev-only-insecure-key-change-me" if DEBUG else "")
if not SECRET_KEY:
    # A local, non-DEBUG run still needs a key; generate one per machine and keep it.
    _key_file = BASE_DIR / "var" / "secret_key"
    _key_file.parent.mkdir(parents=True, exist_ok=True)
    if not _key_file.exists():
        _key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = [h.strip() for h in envstr("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h.strip()]

# Where the real sample data live (read-only) and where the portal writes products.
SHARED_DATA_DIR = envpath("SHARED_DATA_DIR", BASE_DIR.parent / "shared" / "data")
# DATA_ROOT may be an S3-compatible URL, s3://bucket/prefix (README "Object storage", portal/storage.py): its
# server from DATA_ROOT_S3_ENDPOINT_URL (else AWS_ENDPOINT_URL, else AWS), credentials from the standard AWS
# variables. Scratch files (run work directories, temporary answers, map caches, the S3 read-through cache)
# stay on local disk under WORK_ROOT (default: DATA_ROOT when it is local, else var/work).
DATA_ROOT: Path | str = (
    os.environ["DATA_ROOT"].rstrip("/")
    if os.environ.get("DATA_ROOT", "").startswith("s3://")
    else envpath("DATA_ROOT", BASE_DIR / "var" / "data")
)
DATA_ROOT_S3_ENDPOINT_URL = envstr("DATA_ROOT_S3_ENDPOINT_URL", "")
DATA_ROOT_S3_REGION = envstr("DATA_ROOT_S3_REGION", "")
WORK_ROOT = envpath("WORK_ROOT", BASE_DIR) if os.environ.get("WORK_ROOT") else None
# Downloads from an S3 data root of at least this many bytes are redirected (302) to a pre-signed URL valid
# DOWNLOAD_PRESIGNED_SECONDS; smaller ones are streamed by the portal (with ranges and validators).
DOWNLOAD_REDIRECT_MIN_BYTES = envint("DOWNLOAD_REDIRECT_MIN_BYTES", str(8 * 2**20))
DOWNLOAD_PRESIGNED_SECONDS = envint("DOWNLOAD_PRESIGNED_SECONDS", "600")
# The read-through local copies of S3 objects (WORK_ROOT/s3-cache) are pruned, least recently used first, above this.
S3_CACHE_MAX_BYTES = envint("S3_CACHE_MAX_BYTES", str(20 * 2**30))
# The portal's public address and contact, written into every file it publishes (ACDD publisher_url,
# metadata_link, publisher_email); set both on a public deployment.
PORTAL_URL = envstr("PORTAL_URL", "http://127.0.0.1:8000").rstrip("/")
# (the default is a reserved .invalid domain: an address with a domain, as OAI-PMH Identify requires)
PORTAL_CONTACT_EMAIL = envstr("PORTAL_CONTACT_EMAIL", "webmaster@hydroportal.invalid")
# Subset downloads (README "Subset downloads"): requests up to SUBSET_SYNC_MAX_BYTES (uncompressed
# estimate) are answered directly; larger ones become Celery jobs up to SUBSET_JOB_MAX_BYTES; above
# that the API answers 413 and says how to split the request. Job results are deleted after
# SUBSET_JOB_TTL_HOURS. A running job whose worker has not written a heartbeat for
# SUBSET_JOB_STALE_SECONDS is marked failed (the worker died) and can be retried.
SUBSET_SYNC_MAX_BYTES = envint("SUBSET_SYNC_MAX_BYTES", str(64 * 2**20))
SUBSET_JOB_MAX_BYTES = envint("SUBSET_JOB_MAX_BYTES", str(8 * 2**30))
SUBSET_JOB_TTL_HOURS = envfloat("SUBSET_JOB_TTL_HOURS", "72")
SUBSET_JOB_HEARTBEAT_SECONDS = envfloat("SUBSET_JOB_HEARTBEAT_SECONDS", "5")
SUBSET_JOB_STALE_SECONDS = envfloat("SUBSET_JOB_STALE_SECONDS", "120")
# a temporary answer file older than this belongs to no request (a killed worker's): housekeeping removes it
SUBSET_TMP_MAX_AGE_SECONDS = envfloat("SUBSET_TMP_MAX_AGE_SECONDS", "3600")
# Celery time limits of the subset tasks (portal/subsets/tasks.py): at the soft limit a job stops and is
# marked failed with the reason; at the hard limit its worker process is killed (reap_stale_jobs fails it).
SUBSET_JOB_SOFT_TIME_LIMIT_SECONDS = envfloat("SUBSET_JOB_SOFT_TIME_LIMIT_SECONDS", "3300")
SUBSET_JOB_TIME_LIMIT_SECONDS = envfloat("SUBSET_JOB_TIME_LIMIT_SECONDS", "3600")
SUBSET_HOUSEKEEPING_SOFT_TIME_LIMIT_SECONDS = envfloat("SUBSET_HOUSEKEEPING_SOFT_TIME_LIMIT_SECONDS", "240")
SUBSET_HOUSEKEEPING_TIME_LIMIT_SECONDS = envfloat("SUBSET_HOUSEKEEPING_TIME_LIMIT_SECONDS", "280")
# Largest single OPeNDAP (.dods) response; clients index smaller hyperslabs (portal/opendap).
OPENDAP_MAX_BYTES = envint("OPENDAP_MAX_BYTES", str(2**30))
# Quotas (portal/limits.py): jobs queued or running at once and bytes downloaded in any 24 hours, per
# signed-in user (staff raise a user's own in the admin: Accounts > Quotas) or anonymous client (IP);
# rate limits per minute and front door (api, edr, opendap, files, pages, accounts), counted in Redis.
QUOTA_USER_CONCURRENT_JOBS = envint("QUOTA_USER_CONCURRENT_JOBS", "4")
QUOTA_ANON_CONCURRENT_JOBS = envint("QUOTA_ANON_CONCURRENT_JOBS", "2")
QUOTA_USER_BYTES_PER_DAY = envint("QUOTA_USER_BYTES_PER_DAY", str(50 * 2**30))
QUOTA_ANON_BYTES_PER_DAY = envint("QUOTA_ANON_BYTES_PER_DAY", str(2 * 2**30))
RATE_USER_PER_MINUTE = envint("RATE_USER_PER_MINUTE", "600")
RATE_ANON_PER_MINUTE = envint("RATE_ANON_PER_MINUTE", "120")
# Rate limits (portal/limits.py hit_rate, applied to every request by portal.edge.RateLimitMiddleware):
# per front door and per user (session or token) or anonymous client (IP), one-minute windows counted
# in the Redis cache by django-ratelimit's core; a POST to /accounts/ or /admin/login/ (login, sign-up,
# password reset) at most RATE_ACCOUNTS_POST_PER_MINUTE. If the cache does not answer the limiter
# lets requests through (a warning is logged) and tries the cache again after RATELIMIT_RETRY_CACHE_SECONDS.
RATE_ACCOUNTS_POST_PER_MINUTE = envint("RATE_ACCOUNTS_POST_PER_MINUTE", "20")
RATELIMIT_ENABLE = envbool("RATELIMIT_ENABLE", "true")
RATELIMIT_FAIL_OPEN = True
RATELIMIT_USE_CACHE = "default"
RATELIMIT_RETRY_CACHE_SECONDS = envint("RATELIMIT_RETRY_CACHE_SECONDS", "10")
# Request caps (portal.edge.RequestCapsMiddleware, portal/api): bodies larger than REQUEST_MAX_BODY_BYTES
# are a 413 (Content-Length or chunked), NUL bytes in the path or query a 400; JSON bodies nested deeper
# than JSON_MAX_DEPTH a 400; API pages of at most API_MAX_PAGE_SIZE items from an offset of at most
# API_MAX_OFFSET (larger values are a 400, never a database error).
REQUEST_MAX_BODY_BYTES = envint("REQUEST_MAX_BODY_BYTES", str(2 * 2**20))
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BODY_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = envint("DATA_UPLOAD_MAX_NUMBER_FIELDS", "1000")
FILE_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BODY_BYTES
JSON_MAX_DEPTH = envint("JSON_MAX_DEPTH", "32")
API_MAX_PAGE_SIZE = envint("API_MAX_PAGE_SIZE", "500")
API_MAX_OFFSET = envint("API_MAX_OFFSET", str(10**9))
# A database that cannot be reached is a 503 with this Retry-After (portal.edge.DatabaseUnavailableMiddleware);
# a connection attempt gives up after DATABASE_CONNECT_TIMEOUT seconds, so no request hangs on it.
DATABASE_UNAVAILABLE_RETRY_AFTER = envint("DATABASE_UNAVAILABLE_RETRY_AFTER", "30")
DATABASE_CONNECT_TIMEOUT = envint("DATABASE_CONNECT_TIMEOUT", "3")
# Station / tower / basin observation subsets (/api/observations/) answer at most this many rows.
STATION_SUBSET_MAX_ROWS = envint("STATION_SUBSET_MAX_ROWS", "2000000")
STATION_SUBSET_SYNC_MAX_ROWS = envint(
    "STATION_SUBSET_SYNC_MAX_ROWS", "200000"
)  # /api/observations/: 413 above, saying how to split
# OAI-PMH at /oai/ (portal/oai): lists of OAI_PAGE_SIZE records per page (then a resumption token);
# item identifiers oai:<OAI_REPOSITORY_IDENTIFIER>:<record id> (by default the host of PORTAL_URL).
OAI_PAGE_SIZE = envint("OAI_PAGE_SIZE", "100")
OAI_REPOSITORY_IDENTIFIER = envstr("OAI_REPOSITORY_IDENTIFIER", urlsplit(PORTAL_URL).hostname or "localhost")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
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
    "portal.maps",
    "portal.validation",
    "portal.compare",
    "portal.closure",
    "ingestion",
    "products",
]

# CorsMiddleware before anything that can answer (WhiteNoise, CommonMiddleware); WhiteNoise serves
# static files pre-compressed, so GZipMiddleware comes after it and before every middleware that
# reads or writes bodies (portal.middleware.GZipMiddleware: text/JSON/CSV only, never a range).
# portal.edge (the edge: request caps, rate limits, database down) and the CSP header are described there
# and in the "Security headers" section below; the rate limiter comes after the token middleware so
# that a token's user counts as that user.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.edge.DatabaseUnavailableMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "portal.edge.RequestCapsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.accounts.middleware.TokenAuthenticationMiddleware",
    "portal.edge.RateLimitMiddleware",
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
            # {% load seo %}{% page_meta as head_meta %}: canonical URL, description and OpenGraph tags of a page
            "libraries": {"seo": "portal.seo.tags"},
        },
    },
]

WSGI_APPLICATION = "portal.wsgi.application"

DATABASE_URL = envstr("DATABASE_URL", "postgis://postgres@127.0.0.1:5432/hydroportal")
DATABASES = {"default": envdatabase("DATABASE_URL", DATABASE_URL, conn_max_age=60)}
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = DATABASE_CONNECT_TIMEOUT

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
# allauth authenticates with email=..., the admin and HTTP Basic with username=...: one name for all
AXES_USERNAME_CALLABLE = "portal.edge.axes_username"

# Shared cache in Redis: rate-limit counters (django-ratelimit) are seen by every web worker.
CACHE_URL = envstr("CACHE_URL", "redis://127.0.0.1:6379/1")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": envstr("CACHE_KEY_PREFIX", "portal"),
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

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
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "range",
    "if-range",
    "if-none-match",
    "if-modified-since",
    "x-requested-with",
)
CORS_EXPOSE_HEADERS = (
    "Content-Disposition",
    "Content-Range",
    "Accept-Ranges",
    "Content-Length",
    "ETag",
    "Location",
    "Last-Modified",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-Excluded-Networks",
)

CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", "false")
CELERY_BEAT_SCHEDULE = {
    "subset-housekeeping": {"task": "subsets.housekeeping", "schedule": 300.0},
    "maps-housekeeping": {"task": "maps.housekeeping", "schedule": 300.0},
}
MAPS_HOUSEKEEPING_SOFT_TIME_LIMIT_SECONDS = envfloat("MAPS_HOUSEKEEPING_SOFT_TIME_LIMIT_SECONDS", "240")
MAPS_HOUSEKEEPING_TIME_LIMIT_SECONDS = envfloat("MAPS_HOUSEKEEPING_TIME_LIMIT_SECONDS", "280")

# Where generation computes its chunked grid windows (README "Scaling out"): empty = in the Celery
# worker's own process; "local" = a Dask LocalCluster of DASK_LOCAL_WORKERS processes started for each
# run; anything else = the address of a running Dask scheduler (tcp://host:8786) whose workers see the
# same SHARED_DATA_DIR paths. The worker process still writes the product files.
DASK_SCHEDULER_ADDRESS = envstr("DASK_SCHEDULER_ADDRESS", "").strip()
DASK_LOCAL_WORKERS = envint("DASK_LOCAL_WORKERS", "2")
if DASK_LOCAL_WORKERS < 1:
    raise ImproperlyConfigured(f"DASK_LOCAL_WORKERS: expected at least 1, got {DASK_LOCAL_WORKERS}")
# The ET grid predicts with its LightGBM models compiled to machine code (lleaves, products/methods/compiled_trees.py:
# 3-5x faster; each checked against LightGBM before use, LightGBM where that fails), kept in GENERATION_TREES_CACHE
# (per model and CPU) so that later runs of the same model load them instead of compiling again.
GENERATION_COMPILED_TREES = envbool("GENERATION_COMPILED_TREES", "true")
GENERATION_TREES_CACHE = envpath("GENERATION_TREES_CACHE", BASE_DIR / "var" / "cache" / "compiled-trees")

# Worker queues: generation, subset jobs and housekeeping each on a Celery queue of its own, consumed by a
# worker of its own (`make run` starts one per queue), so that an hour-long generation never holds up a
# subset job, nor a burst of jobs the housekeeping. Each queue has a name (QUEUE_<ROLE>), a concurrency
# (QUEUE_<ROLE>_CONCURRENCY) and soft/hard time limits (QUEUE_<ROLE>_SOFT_TIME_LIMIT_SECONDS,
# QUEUE_<ROLE>_TIME_LIMIT_SECONDS): a worker started with `-Q <name>` takes them (portal/celery.py, on
# ``celeryd_init``; its own command-line options win). The limits are the worker's defaults, for a task
# that sets none; a task's own limits are its settings (SUBSET_JOB_*, *_HOUSEKEEPING_*), and the
# generation queue's are products.generate's own (CELERY_TASK_ANNOTATIONS). Anything not routed below
# goes to the default queue, which `make run`'s housekeeping worker consumes too.
from kombu import Queue  # noqa: E402  (here, beside the only settings that use it)

WORKER_QUEUES = {
    "generation": {
        "queue": envstr("QUEUE_GENERATION", "generation"),
        "concurrency": envint("QUEUE_GENERATION_CONCURRENCY", "1"),
        "soft_time_limit": envfloat("QUEUE_GENERATION_SOFT_TIME_LIMIT_SECONDS", "3000"),
        "time_limit": envfloat("QUEUE_GENERATION_TIME_LIMIT_SECONDS", "3600"),
    },
    "subsets": {
        "queue": envstr("QUEUE_SUBSETS", "subsets"),
        "concurrency": envint("QUEUE_SUBSETS_CONCURRENCY", "2"),
        "soft_time_limit": envfloat("QUEUE_SUBSETS_SOFT_TIME_LIMIT_SECONDS", str(SUBSET_JOB_SOFT_TIME_LIMIT_SECONDS)),
        "time_limit": envfloat("QUEUE_SUBSETS_TIME_LIMIT_SECONDS", str(SUBSET_JOB_TIME_LIMIT_SECONDS)),
    },
    "housekeeping": {
        "queue": envstr("QUEUE_HOUSEKEEPING", "housekeeping"),
        "concurrency": envint("QUEUE_HOUSEKEEPING_CONCURRENCY", "1"),
        "soft_time_limit": envfloat(
            "QUEUE_HOUSEKEEPING_SOFT_TIME_LIMIT_SECONDS",
            str(max(SUBSET_HOUSEKEEPING_SOFT_TIME_LIMIT_SECONDS, MAPS_HOUSEKEEPING_SOFT_TIME_LIMIT_SECONDS)),
        ),
        "time_limit": envfloat(
            "QUEUE_HOUSEKEEPING_TIME_LIMIT_SECONDS",
            str(max(SUBSET_HOUSEKEEPING_TIME_LIMIT_SECONDS, MAPS_HOUSEKEEPING_TIME_LIMIT_SECONDS)),
        ),
    },
    "default": {
        "queue": envstr("QUEUE_DEFAULT", "default"),
        "concurrency": envint("QUEUE_DEFAULT_CONCURRENCY", "1"),
        "soft_time_limit": envfloat("QUEUE_DEFAULT_SOFT_TIME_LIMIT_SECONDS", "600"),
        "time_limit": envfloat("QUEUE_DEFAULT_TIME_LIMIT_SECONDS", "660"),
    },
}
for _role, _options in WORKER_QUEUES.items():
    if not 0 < _options["soft_time_limit"] < _options["time_limit"] or _options["concurrency"] < 1:
        raise ImproperlyConfigured(
            f"queue {_role}: expected a concurrency of at least 1 and 0 < soft time limit < time limit, got {_options}"
        )
if len({options["queue"] for options in WORKER_QUEUES.values()}) != len(WORKER_QUEUES):
    raise ImproperlyConfigured(f"QUEUE_*: each queue needs a name of its own, got {WORKER_QUEUES}")
# routed by task name (the names the tasks register with); the queues are direct exchanges of their own name
CELERY_TASK_ROUTES = {
    "products.generate": {"queue": WORKER_QUEUES["generation"]["queue"]},
    "subsets.run_job": {"queue": WORKER_QUEUES["subsets"]["queue"]},
    "subsets.housekeeping": {"queue": WORKER_QUEUES["housekeeping"]["queue"]},
    "maps.housekeeping": {"queue": WORKER_QUEUES["housekeeping"]["queue"]},
}
CELERY_TASK_QUEUES = tuple(Queue(options["queue"], routing_key=options["queue"]) for options in WORKER_QUEUES.values())
CELERY_TASK_DEFAULT_QUEUE = WORKER_QUEUES["default"]["queue"]
CELERY_TASK_ANNOTATIONS = {
    "products.generate": {
        "soft_time_limit": WORKER_QUEUES["generation"]["soft_time_limit"],
        "time_limit": WORKER_QUEUES["generation"]["time_limit"],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.accounts.authentication.HeaderAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # limit/offset read strictly and capped (API_MAX_PAGE_SIZE, API_MAX_OFFSET): a 400 naming the bad one
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.CappedLimitOffsetPagination",
    # JSON nested at most JSON_MAX_DEPTH deep (a 400 beyond); forms for the browsable API and the admin's
    "DEFAULT_PARSER_CLASSES": [
        "portal.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
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

# Security headers. Content-Security-Policy (django-csp 4): the pages use only the portal's own scripts
# and styles (Leaflet and Chart.js set element styles from script, which CSP allows); JSON data blocks
# (json_script) are not scripts. /api/docs/ (Swagger UI) loads its setup as a script of its own
# (SpectacularSwaggerSplitView); only its inline <style> is allowed there (portal/api/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# BEHIND_TLS=true (the portal is served over HTTPS, by a proxy that sets X-Forwarded-Proto): HSTS for
# a year with subdomains, HTTP redirected to HTTPS, cookies only over HTTPS. `manage.py check --deploy`
# is clean with it, DEBUG off and a long SECRET_KEY.
BEHIND_TLS = envbool("BEHIND_TLS", "false")
if BEHIND_TLS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]  # a load balancer's check over plain HTTP
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", str(365 * 24 * 3600))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "true")  # the directive only; listing is a request to browsers
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}

# Debian 12 ships GDAL 3.6, which cannot block file/network access when parsing spatial
# references; the portal only builds geometries from numbers and GEOS-parsed WKT/GeoJSON.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
