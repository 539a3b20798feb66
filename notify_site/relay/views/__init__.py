"""The relay's HTTP endpoints (SPEC 5), one module per area, all on one blueprint
(:mod:`.blueprint`):

* :mod:`.oauth` — the consent page and the token exchange;
* :mod:`.notify_api` — ``/api/notify``, ``/api/status``, ``/api/revoke`` and their
  ``X-RateLimit-*`` headers;
* :mod:`.inbox` — the private inbox, as a page and as JSON, and uploaded images;
* :mod:`.mypage` — My page: personal access tokens and every connected service;
* :mod:`.line` — channel mode: LINE's webhook, the pairing poll, the channel's admin page;
* :mod:`.errors` — LINE Notify's JSON on the API, the relay's own error pages for people.

Views are thin: they read the request, call one service, and turn domain errors into answers.
"""

from __future__ import annotations

from notify_site.relay.views import errors, inbox, line, mypage, notify_api, oauth
from notify_site.relay.views.blueprint import bp

#: Machine-to-machine endpoints: authenticated by client secret, bearer token or LINE's
#: signature, not cookies, so CSRF protection does not apply.
CSRF_EXEMPT = (
    oauth.token,
    notify_api.api_notify,
    notify_api.api_status,
    notify_api.api_revoke,
    line.line_webhook,
)

__all__ = ["CSRF_EXEMPT", "bp", "errors", "inbox", "line", "mypage", "notify_api", "oauth"]
