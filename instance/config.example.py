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
# all of them decrypt. Make a new key with `flask --app wsgi generate-key` (see README,
# "Rotating the token keys"). Generated on first run when unset.
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
# The callback URL registered with the Notify server (never taken from the Host header).
# NOTIFY_REDIRECT_URI = "http://127.0.0.1:5000/callback"
# Seconds before a call to the Notify server gives up.
# NOTIFY_TIMEOUT = 10
# Seconds a started connect flow stays valid.
# OAUTH_STATE_TTL = 3600

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
# The sandbox's chats: the 1-on-1 chat's name and the groups offered on the authorize page.
# RELAY_SANDBOX_USER = "Sandbox user"
# RELAY_SANDBOX_GROUPS = ["Family", "Team alerts"]
# Largest image file the relay accepts, in bytes.
# RELAY_IMAGE_MAX_BYTES = 5 * 1024 * 1024

# --- Accounts and web -----------------------------------------------------------------------
# Whether anyone may register (the first account is an admin).
# REGISTRATION_OPEN = True
# The database; SQLite in instance/ by default. PostgreSQL: "postgresql+psycopg://user@host/db".
# DATABASE_URL = None
# Largest request body, in bytes.
# MAX_CONTENT_LENGTH = 12 * 1024 * 1024
# Session cookie flags. SESSION_COOKIE_SECURE = None means: Secure when NOTIFY_REDIRECT_URI
# is https.
# SESSION_COOKIE_SECURE = None
