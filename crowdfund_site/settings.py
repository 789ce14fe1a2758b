"""Settings for Crowdfund, configured entirely from the environment.

Local defaults need no services: SQLite (WAL, IMMEDIATE transactions) and kombu's
server-less filesystem broker. Production and CI set DATABASE_URL and CELERY_BROKER_URL.
"""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; silently ignored when absent

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-secret-key-never-use-in-production")
else:
    SECRET_KEY = env("SECRET_KEY")  # no default: production must set it
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS and security headers ------------------------------------------------------------
# Production defaults are on whenever DEBUG is off, and each can be set from the environment.
# `make run` (DEBUG=1) serves plain http; so do the tests (conftest.py turns these off).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain http
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# The header a TLS-terminating proxy sets to "https" (e.g. X-Forwarded-Proto); only behind a proxy
# that always sets or strips it, or anyone could claim https.
_PROXY_SSL_HEADER = env("SECURE_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https") if _PROXY_SSL_HEADER else None
)
SECURE_REFERRER_POLICY = env("SECURE_REFERRER_POLICY", default="same-origin")
# Browser features no page uses are switched off.
PERMISSIONS_POLICY = env(
    "PERMISSIONS_POLICY",
    default=(
        "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), midi=(), payment=(), usb=()"
    ),
)
# Scripts, styles, images, fonts and forms from this site only: no inline script or style, no
# other host (static files and Swagger UI are served by the site itself).
# Where browsers fetch uploaded pictures (see "Uploaded pictures" below); a CDN's origin joins img-src.
MEDIA_URL = env("MEDIA_URL", default="/media/")
_MEDIA_ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(MEDIA_URL)) if "://" in MEDIA_URL else ""
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    # Pictures come from MEDIA_URL's host when it is a CDN's absolute address.
    "img-src": ["'self'", "data:", *([_MEDIA_ORIGIN] if _MEDIA_ORIGIN else [])],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# crowdfund_site/security.py sends both policies.

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "projects",
    "pledges",
    "escrow",
    "lending",
    "matching",
    "promotion",
    "fulfilment",
    "settlement",
    "risk",
    "crowdfund_site.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "crowdfund_site.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # ?hl=en / ?hl=zh-hans: one address per language, for hreflang (promotion/middleware.py).
    "promotion.middleware.LanguageFromQueryMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Records ?ref= arrivals before any page cache answers (a cache middleware goes below it),
    # and answers old campaign slugs with a 301.
    "promotion.middleware.ReferralMiddleware",
    "promotion.middleware.OldSlugRedirectMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "crowdfund_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # Every template's {% url %} remembers its answers (crowdfund_site/urls_memo.py); fixed text
            # in {% per_language %} is rendered once per language (crowdfund_site/fragments_memo.py).
            "builtins": ["crowdfund_site.urls_memo", "crowdfund_site.fragments_memo"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "crowdfund_site.wsgi.application"
ASGI_APPLICATION = "crowdfund_site.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: WAL lets readers run beside the
    # writer, IMMEDIATE takes the write lock at BEGIN so two writers queue instead of
    # deadlocking on lock upgrade, and the timeout makes them wait rather than fail.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # Off by default: the check is a round trip (SELECT 1) at the start of every request, a tenth
    # of a pledge's statements. Without it a connection the database dropped fails the one request
    # that finds it, and Django discards it at that request's end (it checks a connection after
    # an error); every money request is safe to retry under its Idempotency-Key.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
    # Prepared statements: parameters bound by the server, and a statement a connection has
    # sent PREPARE_THRESHOLD times prepared, so PostgreSQL stops parsing and planning it again
    # (about a third of a pledge's database CPU: benchmarks/README.md, Stop 11). Django leaves
    # both off; off here too (DATABASE_PREPARED_STATEMENTS=0) behind a pooler in transaction
    # mode that cannot keep prepared statements (PgBouncer before 1.21).
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            server_side_binding=True, prepare_threshold=env.int("DATABASE_PREPARE_THRESHOLD", default=5)
        )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
# Django's model backend under the log-in policy (LOGIN_FAILURES_*), for every path that checks a password.
AUTHENTICATION_BACKENDS = ["accounts.backends.LoginPolicyBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Named date formats per language ("DATE_FORMAT" in templates): crowdfund_site/formats/.
FORMAT_MODULE_PATH = ["crowdfund_site.formats"]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"  # filled by collectstatic for production

# --- Uploaded pictures (crowdfund_site/images.py) -------------------------------------------
# Saved through Django's storage API: files under var/media/ by default; MEDIA_STORAGE_BACKEND names
# any other storage class (e.g. "storages.backends.s3.S3Storage" from django-storages, configured
# by its own AWS_* / GS_* settings), and MEDIA_URL is where browsers fetch them (a CDN's address).
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
STORAGES = {
    "default": {"BACKEND": env("MEDIA_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The app serves MEDIA_ROOT itself in development (`make run`); in production the web server or
# the CDN does (README.md, "Pictures").
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=DEBUG)

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "projects:home"
LOGOUT_REDIRECT_URL = "projects:home"
# Failed log-ins allowed per username and address, and per address alone, in one window
# (web form, admin and API token alike: accounts/throttle.py).
LOGIN_FAILURES_PER_ACCOUNT = env.int("LOGIN_FAILURES_PER_ACCOUNT", default=5)
LOGIN_FAILURES_PER_ADDRESS = env.int("LOGIN_FAILURES_PER_ADDRESS", default=30)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)
# Password reset e-mails asked for per e-mail address, and per client address, in one window.
PASSWORD_RESETS_PER_EMAIL = env.int("PASSWORD_RESETS_PER_EMAIL", default=5)
PASSWORD_RESETS_PER_ADDRESS = env.int("PASSWORD_RESETS_PER_ADDRESS", default=20)
PASSWORD_RESET_WINDOW_SECONDS = env.int("PASSWORD_RESET_WINDOW_SECONDS", default=3600)
# E-mail verification links last this long; at most this many are sent per account per window.
EMAIL_VERIFICATION_MAX_AGE_SECONDS = env.int("EMAIL_VERIFICATION_MAX_AGE_SECONDS", default=3 * 86_400)
EMAIL_VERIFICATIONS_PER_USER = env.int("EMAIL_VERIFICATIONS_PER_USER", default=3)
EMAIL_VERIFICATION_WINDOW_SECONDS = env.int("EMAIL_VERIFICATION_WINDOW_SECONDS", default=3600)
# Every limit (API throttles, log-in and password-reset limits: crowdfund_site/ratelimit.py) and
# the page cache live in the cache; production shares one (redis://...) between web processes,
# the local default is per process. CACHE_KEY_PREFIX separates sites or test runs sharing a Redis.
CACHES = {
    "default": {**env.cache("CACHE_URL", default="locmemcache://"), "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="")}
}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "crowdfund_site.cache.SharedClientRedisCache"  # see crowdfund_site/cache.py
# Campaign cards per page on the discover page.
DISCOVER_PAGE_SIZE = env.int("DISCOVER_PAGE_SIZE", default=12)
# Seconds a rendered campaign or discover page is reused for visitors who are not logged in
# (crowdfund_site/page_cache.py); totals they see may be this old. 0 renders every request.
PAGE_CACHE_SECONDS = env.int("PAGE_CACHE_SECONDS", default=10)
# A campaign page whose figures have not moved is reused up to this many seconds ("time left"
# may be this old); never less than PAGE_CACHE_SECONDS.
PAGE_CACHE_MAX_SECONDS = max(PAGE_CACHE_SECONDS, env.int("PAGE_CACHE_MAX_SECONDS", default=60))
# Seconds a matching round's standing (one number per campaign) is reused by live estimates
# for the campaigns not given to; beat computes it again every REFRESH_MATCHING_STANDING_EVERY_SECONDS.
MATCHING_STANDING_SECONDS = env.int("MATCHING_STANDING_SECONDS", default=90)
# Signals on a matching round's challenge screen (risk/fraud.py): at least FRAUD_BURST_MIN_BACKERS
# backers who give only to one campaign pledging to it within FRAUD_BURST_WINDOW_SECONDS, and
# accounts younger than FRAUD_NEW_ACCOUNT_DAYS when they gave.
FRAUD_BURST_MIN_BACKERS = env.int("FRAUD_BURST_MIN_BACKERS", default=5)
FRAUD_BURST_WINDOW_SECONDS = env.int("FRAUD_BURST_WINDOW_SECONDS", default=60)
FRAUD_NEW_ACCOUNT_DAYS = env.int("FRAUD_NEW_ACCOUNT_DAYS", default=7)

EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend",
)
# Where the file-based backend writes each e-mail (`make run` uses it, so a busy worker's log is
# not full of message bodies); read only when a message is sent.
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "mail"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Crowdfund <noreply@crowdfund.local>")
# Where links in e-mails point (e-mails are sent by workers, outside any request).
SITE_URL = env("SITE_URL", default="http://localhost:8000")

# Fonts share cards are drawn with (Debian's fonts-dejavu-core and fonts-noto-cjk): the second
# for text with Chinese characters; Pillow's own font if neither loads.
SHARE_CARD_FONT = env("SHARE_CARD_FONT", default="/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
SHARE_CARD_CJK_FONT = env("SHARE_CARD_CJK_FONT", default="/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")

# --- Money -------------------------------------------------------------------------------
# Platform fee in basis points of the released total (500 = 5 %).
PLATFORM_FEE_BPS = env.int("PLATFORM_FEE_BPS", default=500)
# Delivery holdback of a campaign with rewards, in basis points of its reward pledges, kept at
# success until backers received their rewards (fulfilment); a campaign may choose its own.
DELIVERY_HOLDBACK_BPS = env.int("DELIVERY_HOLDBACK_BPS", default=1000)
# Days after a tier shipped when a backer's silence counts as received.
FULFILMENT_SILENCE_DAYS = env.int("FULFILMENT_SILENCE_DAYS", default=30)
# Days after a reward tier's estimated delivery (none given: the campaign's deadline) when staff
# may declare it not delivered, if it was never marked shipped, and refund its holdback.
FULFILMENT_NOT_DELIVERED_GRACE_DAYS = env.int("FULFILMENT_NOT_DELIVERED_GRACE_DAYS", default=90)
# How many backers' parts of a tier's holdback one transaction refunds.
HOLDBACK_REFUND_BATCH_SIZE = env.int("HOLDBACK_REFUND_BATCH_SIZE", default=2000)
# How long an initiator's delivery record, shown on every campaign page with rewards, is reused
# (at most as old as a visitor's copy of the page).
DELIVERY_RECORD_CACHE_SECONDS = env.int("DELIVERY_RECORD_CACHE_SECONDS", default=PAGE_CACHE_MAX_SECONDS)
# Days after a tier shipped when its backers' survey addresses are erased.
SURVEY_ADDRESS_KEEP_DAYS = env.int("SURVEY_ADDRESS_KEEP_DAYS", default=180)
# Servicing fee of debt campaigns' loans, in basis points a year of the outstanding principal;
# copied into a campaign's loan terms, so later changes do not apply to terms already set.
LENDING_SERVICING_FEE_BPS = env.int("LENDING_SERVICING_FEE_BPS", default=100)
# Days after a due date before an unpaid installment makes its loan late and takes a late fee:
# the greater of a fixed amount (whole units of the loan's currency) and a share of the installment.
LENDING_LATE_GRACE_DAYS = env.int("LENDING_LATE_GRACE_DAYS", default=15)
LENDING_LATE_FEE_FIXED_UNITS = env.int("LENDING_LATE_FEE_FIXED_UNITS", default=15)
LENDING_LATE_FEE_BPS = env.int("LENDING_LATE_FEE_BPS", default=500)
# Days past due at which a late loan defaults (180 for a Kiva-like mode).
LENDING_DEFAULT_DAYS = env.int("LENDING_DEFAULT_DAYS", default=120)
# Charges of a borrower's saved payment method on a due date: tries in all, days between them.
LENDING_AUTOPAY_ATTEMPTS = env.int("LENDING_AUTOPAY_ATTEMPTS", default=3)
LENDING_AUTOPAY_RETRY_DAYS = env.int("LENDING_AUTOPAY_RETRY_DAYS", default=3)
# Investor limits on lending (lending.services.investor_limits): "reg_cf" (US Regulation
# Crowdfunding as amended in 2021), "ecsp" (EU Regulation 2020/1503) or "none".
LENDING_INVESTOR_POLICY = env("LENDING_INVESTOR_POLICY", default="none")
# Per currency, in whole units, never converted: reg_cf's income / net worth threshold, the floor
# of a limit under it and the cap over it; ecsp's amount above which a lender must consent.
LENDING_REG_CF_LIMITS = env.json(
    "LENDING_REG_CF_LIMITS", default={"USD": {"threshold": 124_000, "floor": 2_500, "cap": 124_000}}
)
LENDING_ECSP_CONSENT_ABOVE = env.json("LENDING_ECSP_CONSENT_ABOVE", default={"EUR": 1_000})
# Largest single pledge, in minor units of the campaign's currency.
PLEDGE_MAX_MINOR = env.int("PLEDGE_MAX_MINOR", default=10_000_000_00)
# Pledges of at least this (minor units) may be paid in 3 monthly installments (pledges.installments).
PAY_OVER_TIME_MIN_AMOUNT = env.int("PAY_OVER_TIME_MIN_AMOUNT", default=150_00)
# How many of each add-on one backer may add to their pledge (issue 16).
ADDONS_MAX_PER_BACKER = env.int("ADDONS_MAX_PER_BACKER", default=10)
# Dotted path of the payment gateway class; the sandbox behaves like a processor's test mode.
PAYMENT_GATEWAY = env("PAYMENT_GATEWAY", default="escrow.gateway.SandboxGateway")
# How many pledges one settlement transaction handles.
SETTLEMENT_BATCH_SIZE = env.int("SETTLEMENT_BATCH_SIZE", default=1000)
# Late pledges released per transaction of a weekly batch (settlement/late_release.py).
LATE_RELEASE_BATCH_SIZE = env.int("LATE_RELEASE_BATCH_SIZE", default=1000)
# A campaign that made no settlement progress for this long is re-enqueued by the sweeper.
SETTLEMENT_STUCK_AFTER = timedelta(seconds=env.int("SETTLEMENT_STUCK_AFTER_SECONDS", default=300))
# Days without news (an update, counted from success) after which a succeeded campaign's initiator
# is reminded to post one, its backers are told, and staff see it among the silent campaigns.
SILENCE_REMIND_INITIATOR_DAYS = env.int("SILENCE_REMIND_INITIATOR_DAYS", default=21)
SILENCE_REMIND_BACKERS_DAYS = env.int("SILENCE_REMIND_BACKERS_DAYS", default=28)
SILENCE_STAFF_LIST_DAYS = env.int("SILENCE_STAFF_LIST_DAYS", default=60)
# How many ledger transactions one sealed checkpoint covers (escrow.checkpoints), and how many
# checkpoints one run of the sealing task makes at most (beat runs it again soon after).
LEDGER_CHECKPOINT_BATCH_SIZE = env.int("LEDGER_CHECKPOINT_BATCH_SIZE", default=10_000)
LEDGER_CHECKPOINTS_PER_RUN = env.int("LEDGER_CHECKPOINTS_PER_RUN", default=100)
# A pledge still pending this long after creation is reconciled with the gateway.
PLEDGE_PENDING_RECONCILE_AFTER = timedelta(seconds=env.int("PLEDGE_PENDING_RECONCILE_AFTER_SECONDS", default=600))

# --- Milestones (staged release) ----------------------------------------------------------
# The first tranche, released at success, is at most this share of what was raised (bps).
MILESTONE_FIRST_TRANCHE_MAX_BPS = env.int("MILESTONE_FIRST_TRANCHE_MAX_BPS", default=3000)
# Campaigns whose goal is above this (minor units) must plan milestones; 0: never required.
MILESTONES_REQUIRED_ABOVE_GOAL = env.int("MILESTONES_REQUIRED_ABOVE_GOAL", default=0)
MILESTONE_VOTE_DAYS = env.int("MILESTONE_VOTE_DAYS", default=7)
# A vote passes with this share of the amount voted approving and this turnout of what was pledged.
MILESTONE_VOTE_APPROVE_BPS = env.int("MILESTONE_VOTE_APPROVE_BPS", default=5000)
MILESTONE_VOTE_TURNOUT_BPS = env.int("MILESTONE_VOTE_TURNOUT_BPS", default=1000)
MILESTONE_MAX_RESUBMISSIONS = env.int("MILESTONE_MAX_RESUBMISSIONS", default=2)
MILESTONE_MAX_EXTENSION_DAYS = env.int("MILESTONE_MAX_EXTENSION_DAYS", default=90)
# Days an overdue milestone waits for its extension before the rest is refunded.
MILESTONE_OVERDUE_GRACE_DAYS = env.int("MILESTONE_OVERDUE_GRACE_DAYS", default=30)
# How many pledges one transaction of a refund of the remainder handles.
REMAINDER_REFUND_BATCH_SIZE = env.int("REMAINDER_REFUND_BATCH_SIZE", default=2000)

# --- Celery --------------------------------------------------------------------------------
BROKER_FOLDER = BASE_DIR / "var" / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Everything kombu's filesystem transport writes stays under var/ (its exchange tables too,
    # which it would otherwise put in ./control); crowdfund_site/celery.py creates the folders.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FOLDER / "queue"),
        "data_folder_out": str(BROKER_FOLDER / "queue"),
        "processed_folder": str(BROKER_FOLDER / "processed"),
        "control_folder": str(BROKER_FOLDER / "control"),
        "store_processed": False,
    }
else:
    # An unacknowledged task (worker killed mid-way) is handed out again after this long.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600),
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# The queue tasks are sent to and workers read. Test runs and benchmarks that share a Redis
# database with others each use their own, so no one else's worker takes their tasks.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / "var" / "celerybeat-schedule")
# How often beat sends each periodic task, in seconds (tests shorten them to run beat for real).
CELERY_BEAT_SCHEDULE = {
    "close-due-campaigns": {
        "task": "settlement.tasks.close_due_campaigns",
        "schedule": env.float("CLOSE_DUE_CAMPAIGNS_EVERY_SECONDS", default=60.0),
    },
    "end-due-matching-rounds": {
        "task": "matching.tasks.end_due_rounds",
        "schedule": env.float("END_DUE_MATCHING_ROUNDS_EVERY_SECONDS", default=60.0),
    },
    "refresh-matching-standing": {
        "task": "matching.tasks.refresh_standing",
        "schedule": env.float("REFRESH_MATCHING_STANDING_EVERY_SECONDS", default=60.0),
    },
    "send-silence-reminders": {
        "task": "projects.tasks.send_silence_reminders",
        "schedule": env.float("SEND_SILENCE_REMINDERS_EVERY_SECONDS", default=3600.0),
    },
    # Off the pledge path on purpose: the hold stays one conditional UPDATE; a goal shows unlocked
    # within a minute of the total reaching it.
    "unlock-stretch-goals": {
        "task": "projects.tasks.unlock_stretch_goals",
        "schedule": env.float("UNLOCK_STRETCH_GOALS_EVERY_SECONDS", default=60.0),
    },
    "charge-due-installments": {
        "task": "settlement.tasks.charge_due_installments",
        "schedule": env.float("CHARGE_DUE_INSTALLMENTS_EVERY_SECONDS", default=300.0),
    },
    "seal-ledger": {
        "task": "settlement.tasks.seal_ledger",
        "schedule": env.float("SEAL_LEDGER_EVERY_SECONDS", default=60.0),
    },
    "reconcile-withdrawals": {
        "task": "lending.tasks.reconcile_withdrawals",
        "schedule": env.float("RECONCILE_WITHDRAWALS_EVERY_SECONDS", default=300.0),
    },
    # Each campaign's late pledges are released once a week; the run finds the weeks that ended.
    "release-late-pledges": {
        "task": "settlement.tasks.release_late_pledges",
        "schedule": env.float("RELEASE_LATE_PLEDGES_EVERY_SECONDS", default=3600.0),
    },
    "sweep-settlements": {
        "task": "settlement.tasks.sweep_settlements",
        "schedule": env.float("SWEEP_SETTLEMENTS_EVERY_SECONDS", default=300.0),
    },
    "refit-review-risk-model": {
        "task": "risk.tasks.refit_review_model",
        "schedule": env.float("REFIT_REVIEW_MODEL_EVERY_SECONDS", default=86400.0),
    },
    "purge-idempotency-records": {
        "task": "crowdfund_site.api.tasks.purge_idempotency_records",
        "schedule": env.float("PURGE_IDEMPOTENCY_RECORDS_EVERY_SECONDS", default=3600.0),
    },
    "check-recent-pledges": {
        "task": "risk.tasks.check_recent_pledges",
        "schedule": env.float("CHECK_RECENT_PLEDGES_EVERY_SECONDS", default=300.0),
    },
    "assess-review-queue": {
        "task": "risk.tasks.assess_review_queue",
        "schedule": env.float("ASSESS_REVIEW_QUEUE_EVERY_SECONDS", default=300.0),
    },
    "close-due-milestone-votes": {
        "task": "projects.tasks.close_due_milestone_votes",
        "schedule": env.float("CLOSE_MILESTONE_VOTES_EVERY_SECONDS", default=300.0),
    },
    "detect-overdue-milestones": {
        "task": "settlement.tasks.detect_overdue_milestones",
        "schedule": env.float("DETECT_OVERDUE_MILESTONES_EVERY_SECONDS", default=3600.0),
    },
    "release-signed-off-tranches": {
        "task": "settlement.tasks.release_signed_off_tranches",
        "schedule": env.float("RELEASE_TRANCHES_EVERY_SECONDS", default=300.0),
    },
    # Launch notices and "Remind me" e-mails: due rows claimed with SKIP LOCKED (promotion/notifications.py).
    "send-due-notices": {
        "task": "promotion.tasks.send_due_notices",
        "schedule": env.float("SEND_DUE_NOTICES_EVERY_SECONDS", default=60.0),
    },
    # Referral clicks buffered in Redis on the request path, copied into the database.
    "flush-referral-visits": {
        "task": "promotion.tasks.flush_referral_visits",
        "schedule": env.float("FLUSH_REFERRAL_VISITS_EVERY_SECONDS", default=10.0),
    },
    # Silence after shipping counts as received; tiers whose backers are all decided are settled.
    "resolve-silent-deliveries": {
        "task": "fulfilment.tasks.resolve_silent_deliveries",
        "schedule": env.float("RESOLVE_SILENT_DELIVERIES_EVERY_SECONDS", default=3600.0),
    },
    "erase-survey-addresses": {
        "task": "fulfilment.tasks.erase_survey_addresses",
        "schedule": env.float("ERASE_SURVEY_ADDRESSES_EVERY_SECONDS", default=86400.0),
    },
    "settle-ready-holdbacks": {
        "task": "settlement.tasks.settle_ready_holdbacks",
        "schedule": env.float("SETTLE_READY_HOLDBACKS_EVERY_SECONDS", default=300.0),
    },
    "assess-late-loans": {
        "task": "lending.tasks.assess_late_loans",
        "schedule": env.float("LENDING_ASSESS_LATE_EVERY_SECONDS", default=3600.0),
    },
    "run-loan-due-work": {
        "task": "lending.tasks.run_loan_due_work",
        "schedule": env.float("LENDING_DUE_WORK_EVERY_SECONDS", default=300.0),
    },
}

# Proxies in front of the web processes, whose X-Forwarded-For is trusted for the client's
# address in every per-address limit (crowdfund_site/ratelimit.py); 0 trusts only REMOTE_ADDR.
NUM_PROXIES = env.int("NUM_PROXIES", default=env.int("API_NUM_PROXIES", default=0))

# --- REST API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an unauthenticated API request is answered 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "crowdfund_site.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["crowdfund_site.api.parsers.BoundedJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["crowdfund_site.api.throttles.ApiThrottle"],
    # Requests per user (anonymous callers: per IP) and per client IP, e.g. "600/min".
    "DEFAULT_THROTTLE_RATES": {
        "user": env("API_THROTTLE_USER", default="600/min"),
        "ip": env("API_THROTTLE_IP", default="1200/min"),
        "auth": env("API_THROTTLE_AUTH", default="30/min"),
    },
    "EXCEPTION_HANDLER": "crowdfund_site.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "crowdfund_site.api.schema.ApiAutoSchema",
    "NUM_PROXIES": NUM_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Crowdfund API",
    "DESCRIPTION": (
        "Campaigns, pledges and escrow for programs. Amounts are integers in the currency's minor unit. "
        "Every POST that moves money needs an `Idempotency-Key` header. Errors always have the shape "
        '`{"code": ..., "detail": ..., "fields": {...}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "crowdfund_site.api.schema.request_bodies_closed",
    ],
    "PATH_CONVERTER_OVERRIDES": {"api_id": {"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999_999}},
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "projects.models.CampaignStatus",
        "PledgeStatusEnum": "pledges.models.PledgeStatus",
        "CurrencyEnum": "crowdfund_site.money.CURRENCY_CHOICES",
        "PoolStatusEnum": "matching.models.PoolStatus",
        "RoundStatusEnum": "matching.models.RoundStatus",
    },
}
# Idempotency-Key records of money POSTs are kept at least this long, then purged.
IDEMPOTENCY_KEY_TTL = timedelta(hours=env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=48))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
