# notify_site configuration — copy to instance/config.py and edit what you need.
# Every key can also be set from the environment as NOTIFY_SITE_<KEY> (JSON values are parsed:
# NOTIFY_SITE_RELAY_ENABLED=false, NOTIFY_SITE_RELAY_RATE_LIMIT=500). DATABASE_URL is read too.
# Precedence, lowest first: built-in defaults, instance/secrets.json (generated), this file,
# the environment.

# --- Secrets -------------------------------------------------------------------------------
# Flask session signing. Generated into instance/secrets.json on first run when unset.
# With several machines, set the same value on all of them.
# SECRET_KEY = "a long random string"

# The token key ring, newest first. Each entry is "key-id:fernet-key"; the first one encrypts,
# all of them decrypt. Make a new key with `flask --app wsgi generate-key`, then follow
# docs/key-rotation.md (`flask --app wsgi rotate-keys`). Generated on first run when unset.
# TOKEN_KEYS = ["k2026b:...", "k2026a:..."]

# --- The Notify server ----------------------------------------------------------------------
# Base URL of the OAuth endpoints (/oauth/authorize, /oauth/token).
# NOTIFY_BOT_ORIGIN = "http://127.0.0.1:5000/relay"
# Base URL of the API endpoints (/api/notify, /api/status, /api/revoke).
# NOTIFY_API_ORIGIN = "http://127.0.0.1:5000/relay"
# The site's OAuth client registration. `make run` registers the site with the built-in relay
# and stores these in instance/secrets.json; set them here to use another Notify server.
# NOTIFY_CLIENT_ID = "..."
# NOTIFY_CLIENT_SECRET = "..."
# The callback URL registered with the Notify server (never taken from the Host header). Its
# origin (scheme, host, port) is also the site's public address wherever the site writes an
# absolute URL (the curl examples, the relay's image links in /relay/inbox.json).
# NOTIFY_REDIRECT_URI = "http://127.0.0.1:5000/callback"
# Seconds before a call to the Notify server gives up.
# NOTIFY_TIMEOUT = 10
# Seconds a started connect flow (or a "Sign in with LINE") stays valid.
# OAUTH_STATE_TTL = 3600

# --- Sign in with LINE (README "Sign in with LINE") -------------------------------------------
# A LINE Login channel of the same provider as the relay's Messaging API channel.
# LINE_LOGIN_CHANNEL_ID = "2001234567"
# LINE_LOGIN_CHANNEL_SECRET = "..."
# Where LINE's authorize page is (the token endpoints use RELAY_LINE_API_BASE_URL).
# LINE_LOGIN_ORIGIN = "https://access.line.me"
# The callback URL registered in the LINE console; None: https://<this site>/login/line/callback.
# LINE_LOGIN_REDIRECT_URI = None
# Offer adding the relay's bot as a friend while signing in: "normal", "aggressive" or None.
# LINE_LOGIN_BOT_PROMPT = "normal"
# Seconds before a call to LINE Login gives up.
# LINE_LOGIN_TIMEOUT = 10

# --- The built-in relay ---------------------------------------------------------------------
# Mount the built-in Notify-compatible relay.
# RELAY_ENABLED = True
# Where it is mounted.
# RELAY_URL_PREFIX = "/relay"
# Calls and image uploads allowed per token per window, and the window's length in seconds.
# RELAY_RATE_LIMIT = 1000
# RELAY_IMAGE_RATE_LIMIT = 50
# RELAY_RATE_WINDOW = 3600
# Seconds an authorization code stays valid.
# RELAY_CODE_TTL = 600
# The sandbox chats every account gets, made the first time it needs them: the 1-on-1
# chat's name and the groups (offered on the authorize page and My page).
# RELAY_SANDBOX_USER = "Sandbox user"
# RELAY_SANDBOX_GROUPS = ["Family", "Team alerts"]
# The sandbox's stand-ins for LINE's monthly quota and a group's member count (a push to a
# group costs one unit per member), so that budgets and 429s show without a LINE account.
# RELAY_SANDBOX_MONTHLY_QUOTA = 200
# RELAY_SANDBOX_GROUP_MEMBERS = 5
# LINE's monthly quota (README "LINE's monthly quota"): the time zone of the billing month
# (LINE names none; Japan time is assumed), seconds between reads of LINE's quota, and the
# chat that gets the 80 % / 100 % notices (a LINE user/group/room id in channel mode, a
# sandbox chat's name in the sandbox; None: no notices).
# RELAY_LINE_BILLING_TZ = "Asia/Tokyo"
# RELAY_LINE_QUOTA_REFRESH_SECONDS = 300
# RELAY_QUOTA_NOTICE_CHAT = None
# Pack a chat's already-queued pushes into one Messaging API push (up to 5 message objects):
# LINE counts a push once per recipient, however many objects it carries.
# RELAY_LINE_PACKING = True
# Seconds each new push waits so that the chat's next notifications ride in it (a digest
# window; 0, the default, adds no latency and packs only what is already queued).
# RELAY_LINE_DIGEST_SECONDS = 0
# Largest image file the relay accepts, in bytes. The site checks its own sends against 5 MiB
# (notify_site/notify_content.py): lowering this makes the relay refuse what the site queued.
# RELAY_IMAGE_MAX_BYTES = 5 * 1024 * 1024
# The relay's public base URL, e.g. "https://notify.example.com/relay". Required in channel
# mode (LINE fetches uploaded images from it); when set, the relay's absolute URLs use it,
# else they use the origin of NOTIFY_REDIRECT_URI. HTTPS in channel mode (LINE fetches images
# over HTTPS only); RELAY_LINE_ALLOW_HTTP_PUBLIC_URL = True lets a development setup use http.
# RELAY_PUBLIC_BASE_URL = None

# --- Accounts and web -----------------------------------------------------------------------
# Whether anyone may register (the first account is an admin).
# REGISTRATION_OPEN = True
# How passwords are hashed (werkzeug's methods): "scrypt" (N=2**15), "scrypt:N:r:p" or
# "pbkdf2:sha256:ITERATIONS". Cheaper than N=2**15 or 600,000 rounds is refused unless TESTING
# is on (the test suite hashes with one PBKDF2 round). Hashes made earlier keep working.
# PASSWORD_HASH_METHOD = "scrypt"
# The database; SQLite in instance/ by default. PostgreSQL: "postgresql+psycopg://user@host/db".
# DATABASE_URL = None
# Largest request body, in bytes.
# MAX_CONTENT_LENGTH = 12 * 1024 * 1024
# Session cookie flags. SESSION_COOKIE_SECURE = None means: Secure when NOTIFY_REDIRECT_URI
# is https.
# SESSION_COOKIE_SECURE = None
# Seconds a sign-in lasts after the last visit (7 days); each visit renews it. Sessions also
# end at sign-out (on every device), a password change, or when an admin disables the account.
# PERMANENT_SESSION_LIFETIME = 7 * 24 * 3600

# --- Behind a proxy, host names, HTTPS ------------------------------------------------------
# Host header values the site answers to; anything else gets a 400. A leading dot also allows
# subdomains. None (the default) does not restrict them: fine for local development, but set
# it in production. List the relay's host name too if it is reached under another name.
# TRUSTED_HOSTS = ["notify.example.com"]
# How many reverse proxies in front of the site set each X-Forwarded-* header (werkzeug's
# ProxyFix). 0, the default, trusts none: a client could otherwise forge its address or
# scheme. Behind one proxy that terminates TLS, set X_FOR and X_PROTO to 1, so that the site
# sees the client's address (rate limits, sign-in throttle) and knows the request was HTTPS
# (HSTS). The session cookie's Secure flag follows NOTIFY_REDIRECT_URI, above.
# PROXY_FIX_X_FOR = 0
# PROXY_FIX_X_PROTO = 0
# PROXY_FIX_X_HOST = 0
# PROXY_FIX_X_PORT = 0
# PROXY_FIX_X_PREFIX = 0
# Strict-Transport-Security on answers to HTTPS requests: max-age in seconds, and whether it
# covers subdomains.
# HSTS_MAX_AGE = 31536000
# HSTS_INCLUDE_SUBDOMAINS = True

# --- Rate limits ----------------------------------------------------------------------------
# Incoming webhooks (/webhooks, README "Alerts from Grafana, Alertmanager and Uptime Kuma").
# A new webhook's window: the same alert group in the same state within this many seconds
# queues once (each webhook may change it; 0: every post queues).
# WEBHOOK_DEDUPE_SECONDS = 300
# Posts per webhook secret to /hooks/… (counted like API_RATE_LIMIT); over it: 429.
# WEBHOOK_RATE_LIMIT = "120 per minute"
# The largest post a webhook reads, in bytes; over it: 413.
# WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
# Requests one API key may make to /api/v1 (all endpoints together); over it: 429 with
# Retry-After. Limits are strings like "600 per minute" or "10/second;1000/hour".
# API_RATE_LIMIT = "600 per minute"
# Failed sign-ins allowed for one username from one address; then sign-in is refused for
# that pair until the window has passed.
# LOGIN_FAILURE_LIMIT = "5 per 15 minutes"
# False turns all of the above off.
# RATELIMIT_ENABLED = True
# Where the counters live. memory:// counts per process; with several processes or machines
# use Redis so they share one count (needs the redis package, in requirements.txt).
# RATELIMIT_STORAGE_URI = "memory://"
# RATELIMIT_STORAGE_URI = "redis://127.0.0.1:6379/0"
# Options for the storage. For Redis they go to redis-py; socket and connect timeouts default
# to 1 second there, so a Redis that hangs cannot hang the site.
# RATELIMIT_STORAGE_OPTIONS = {"socket_timeout": 0.5}
# fixed-window, moving-window or sliding-window-counter.
# RATELIMIT_STRATEGY = "fixed-window"
# Prefix of every counter's key (several sites can share one Redis).
# RATELIMIT_KEY_PREFIX = "notify_site"
# While the storage is unreachable, count in each process's memory instead of failing.
# RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True

# --- Metrics --------------------------------------------------------------------------------
# GET /metrics (Prometheus text format) answers only with "Authorization: Bearer <token>":
# 404 while this is None, 401 with a missing or wrong token. Every web machine shares it.
# METRICS_TOKEN = "a-long-random-string"
# A delivery worker (flask --app wsgi worker) serves its own metrics on this port, with the
# same token; None: it does not. The address it listens on (keep it on a private network).
# WORKER_METRICS_PORT = 9200
# WORKER_METRICS_HOST = "127.0.0.1"

# --- Scheduled sends ------------------------------------------------------------------------
# An occurrence of a recurring schedule missed while no worker ran is sent when a worker comes
# back if it is at most this many seconds old; older ones are recorded as skipped.
# SCHEDULE_CATCH_UP_SECONDS = 3600
# Schedules one worker claims per round, and occurrences of one schedule handled per round.
# SCHEDULE_CLAIM_BATCH = 50
# SCHEDULE_OCCURRENCES_PER_ROUND = 100

# --- Housekeeping ----------------------------------------------------------------------------
# Finished notifications (delivered, failed, cancelled) older than this many days are deleted,
# with their delivery attempts, by the workers; None or 0 keeps them all. Idempotency-Key
# records always expire after 24 hours. Seconds between two housekeeping rounds of a worker.
# NOTIFICATION_RETENTION_DAYS = None
# HOUSEKEEPING_INTERVAL = 600
