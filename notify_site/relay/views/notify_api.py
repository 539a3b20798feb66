"""The Notify API (SPEC 5): ``/api/notify``, ``/api/status``, ``/api/revoke``.

Every answer to a valid access token carries the ``X-RateLimit-*`` headers: authenticating
puts the token's window in ``g``, and the relay's ``after_request`` hook writes it out, for
errors too (a 429 sets the window it refused with).

Extension (issue 15, ``relay/budgets.py``): when a monthly LINE budget applies to the token,
answers also carry ``X-LineQuota-Limit``, ``X-LineQuota-Remaining`` and ``X-LineQuota-Reset``
(the tightest budget; reset in epoch seconds), and ``/api/status`` adds ``lineQuota``:
``{"scope", "limit", "used", "remaining", "reset"}``. A client that knows only LINE Notify
ignores both.
"""

from __future__ import annotations

from flask import Response, current_app, g, request

from notify_site.db_types import utcnow
from notify_site.relay import budgets, notices, service
from notify_site.relay.payload import FileField, parse_notify_fields
from notify_site.relay.ratelimit import RateLimits, current_window, rate_limit_headers
from notify_site.relay.service import TokenContext
from notify_site.relay.views.blueprint import bp
from notify_site.relay.views.errors import answer


def _limits() -> RateLimits:
    return RateLimits.from_config(current_app.config)


def _authenticate(*, allow_unreachable: bool = False) -> TokenContext:
    """The request's access token; from here on, answers carry its rate-limit headers."""
    token = service.authenticate_token(
        request.headers.get("Authorization"), allow_unreachable=allow_unreachable
    )
    g.relay_rate_window = token.window
    g.relay_quota_subject = (token.token_pk, token.person_id)
    return token


def _quota_figures() -> budgets.QuotaFigures | None:
    """The tightest monthly budget of the request's token (or the one that refused it)."""
    refused = g.get("relay_line_quota")
    if refused is not None:
        return refused
    counted = g.get("relay_quota_counted")
    if counted is not None:  # what the accepted call counted against, as it left them
        return budgets.tightest(counted)
    subject = g.get("relay_quota_subject")
    if subject is None:
        return None
    return budgets.tightest(budgets.figures_for(*subject, current_app.config, utcnow()))


@bp.before_request
def forget_rate_limit_window() -> None:
    # g lives as long as the app context, which a test (or a CLI) may share between requests.
    g.relay_rate_window = None
    g.relay_quota_subject = None
    g.relay_line_quota = None
    g.relay_quota_counted = None


@bp.after_request
def add_rate_limit_headers(response: Response) -> Response:
    window = g.get("relay_rate_window")
    if window is not None:
        limits = _limits()
        window = current_window(window, utcnow(), limits)
        response.headers.update(rate_limit_headers(window, limits))
    if response.status_code in (200, 429) and request.endpoint != "relay.api_revoke":
        response.headers.update(budgets.quota_headers(_quota_figures()))
    return response


@bp.post("/api/notify")
def api_notify():
    """Deliver a notification to the token's chat (the sandbox inbox, or LINE).

    The fields are checked before the window is touched: a request refused with 400 spends
    no call ([?] LINE did not say); an admitted one spends a call, and an image upload too.
    """
    token = _authenticate()
    # Query string and body are merged, the body winning (LINE read both).
    fields = request.args.to_dict()
    fields.update(request.form.to_dict())
    upload = request.files.get("imageFile")
    image_file = None
    if upload is not None:
        image_file = FileField(upload.filename or "", upload.stream, upload.mimetype or "")
    payload = parse_notify_fields(
        fields, image_file, image_max_bytes=int(current_app.config["RELAY_IMAGE_MAX_BYTES"])
    )
    accepted = service.deliver_notification(
        token,
        payload,
        limits=_limits(),
        now=utcnow(),
        wait_seconds=float(current_app.config["RELAY_LINE_SYNC_WAIT_SECONDS"]),
    )
    g.relay_rate_window = accepted.window
    g.relay_quota_counted = accepted.quota
    notices.check_after_call(token.token_pk, token.person_id, accepted.quota)
    if accepted.push_id is None:
        return answer(200, "ok")
    # Channel mode: LINE's own answer when it comes in time (README "What a 200 means").
    delivery = service.await_line(accepted, current_app.config)
    if delivery.state == "delivered":
        return answer(200, "ok")
    return answer(200, "ok", delivery="pending", messageId=delivery.message_id)


@bp.get("/api/messages/<string(maxlength=32):message_id>")
def api_message(message_id: str):
    """An extension: the state of a message this token sent (channel mode's ``messageId``).
    Spends no call: a client that was told *pending* may look until it is final."""
    token = _authenticate(allow_unreachable=True)
    delivery = service.message_outcome(token, message_id)
    extra = {"reason": delivery.reason} if delivery.reason else {}
    return answer(200, "ok", messageId=delivery.message_id, delivery=delivery.state, **extra)


@bp.get("/api/status")
def api_status():
    """The token's target; spends one call, as LINE's did."""
    token = _authenticate()
    g.relay_rate_window = service.token_status(token, limits=_limits(), now=utcnow())
    figures = _quota_figures()
    extra = {"lineQuota": figures.as_json()} if figures is not None else {}
    return answer(200, "ok", targetType=token.chat_kind, target=token.chat_name, **extra)


@bp.post("/api/revoke")
def api_revoke():
    """Disable the token at once (also when its chat is unreachable)."""
    token = _authenticate(allow_unreachable=True)
    service.revoke_token(token, now=utcnow())
    return answer(200, "ok")
