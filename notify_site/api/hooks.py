"""``POST /hooks/<id>/<secret>``: where Grafana, Alertmanager, Uptime Kuma and any other tool
post (SPEC 8). Thin, like every view: read the post, call the receive service, map its errors.

The secret is in the path (many tools take only a URL) or in ``Authorization: Bearer``
(``POST /hooks/<id>``). It is a JSON route like the API's: no CSRF token (the secret is the
credential, and a browser never adds it on its own), rate-limited per presented secret
(``WEBHOOK_RATE_LIMIT``, notify_site/ratelimit.py), bodies bounded by
``WEBHOOK_MAX_BODY_BYTES`` (413), and errors in the site's JSON envelope:

* 202 — queued (or a repeat within the window: ``"status": "duplicate"``, nothing queued),
  with the notifications and the message they carry;
* 400 — the format could not read the body, ``fields`` naming what is missing;
* 404 — no such webhook, or a wrong secret: the same answer, with no hint of which;
* 409 — the webhook is paused, or none of its chats can receive messages;
* 413, 429 — too large, too many.

Log lines never hold the secret: see notify_site/log_redaction.py.
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, request
from flask_babel import gettext

from notify_site.api.errors import ApiError, register_error_handlers
from notify_site.api.schemas.fields import ID_MAX
from notify_site.api.schemas.responses import WebhookPostResponseSchema
from notify_site.extensions import csrf
from notify_site.services.webhooks import formats, manage, receive

bp = Blueprint("hooks", __name__, url_prefix="/hooks")
# The secret in the path or a header is the whole credential: a cross-site form cannot
# forge it, so a CSRF token would protect nothing (SPEC 4.7).
csrf.exempt(bp)
register_error_handlers(bp)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
POST_RESPONSE = WebhookPostResponseSchema()


@bp.before_request
def bound_the_body() -> None:
    # Read before anything touches the body: werkzeug then answers an oversized one with 413.
    request.max_content_length = current_app.config["WEBHOOK_MAX_BODY_BYTES"]


def presented_secret() -> str | None:
    """The secret from the path, else from ``Authorization: Bearer``."""
    secret = (request.view_args or {}).get("secret")
    if secret:
        return secret
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


# Grafana may be set to PUT; every tool else posts.
@bp.route(f"/<int(max={ID_MAX}):webhook_id>", methods=["POST", "PUT"], endpoint="receive")
@bp.route(
    f"/<int(max={ID_MAX}):webhook_id>/<secret>",
    methods=["POST", "PUT"],
    endpoint="receive_with_secret",
)
def receive_post(webhook_id: int, secret: str | None = None):
    try:
        webhook = receive.authenticate(webhook_id, presented_secret())
    except manage.WebhookNotFoundError:
        raise ApiError(404, "not_found", gettext("No such webhook.")) from None
    post = _read_post()
    try:
        received = receive.receive(webhook, post)
    except formats.PayloadError as error:
        names = ", ".join(sorted(error.fields))
        raise ApiError(
            400,
            "invalid_payload",
            gettext(
                "This %(format)s webhook could not read the body (%(names)s); see fields.",
                format=webhook.format,
                names=names,
            ),
            fields=error.translated(),
        ) from None
    except receive.WebhookPausedError as error:
        raise ApiError(409, "webhook_paused", str(error)) from None
    except receive.NoActiveChatError as error:
        raise ApiError(409, "no_active_chat", str(error)) from None
    body = json.dumps(POST_RESPONSE.dump(received), ensure_ascii=False) + "\n"
    return current_app.response_class(body, status=202, mimetype="application/json")


def _read_post() -> receive.Post:
    body = request.get_data(cache=True)  # first, so a form below is parsed from this copy
    form = None
    if request.mimetype in FORM_TYPES:
        form = {name: request.form[name] for name in request.form}
    return receive.Post(body=body, form=form)
