"""The relay's HTTP endpoints (SPEC 5): OAuth, the Notify API, the sandbox inbox.

Views are thin: they read the request, call one service, and turn domain errors into answers.
The API and token endpoints always answer JSON ``{"status": N, "message": "..."}`` — also
for a body over the size limit (413) and for unexpected errors (500); every answer to a valid
access token carries the ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from notify_site.db_types import utcnow
from notify_site.extensions import db, login_manager
from notify_site.relay import oauth, service
from notify_site.relay.errors import (
    AuthorizeRequestError,
    ChatNotAvailableError,
    InvalidTokenError,
    RateLimitExceededError,
    RelayError,
)
from notify_site.relay.forms import AuthorizeForm
from notify_site.relay.line import pairing, quota, webhook
from notify_site.relay.line.channel import ChannelConfigError, ChannelError, current_settings
from notify_site.relay.models import RelayMessage
from notify_site.relay.payload import FileField, parse_notify_fields
from notify_site.relay.ratelimit import RateLimits, current_window, rate_limit_headers
from notify_site.relay.service import TokenContext
from notify_site.security import external_url

log = logging.getLogger(__name__)

bp = Blueprint(
    "relay",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# Endpoints that answer JSON, errors included.
JSON_ENDPOINTS = frozenset(
    {
        "relay.token",
        "relay.api_notify",
        "relay.api_status",
        "relay.api_revoke",
        "relay.inbox_json",
        "relay.line_webhook",
        "relay.line_pairing",
    }
)
_INT_MAX = 2**31 - 1


def _limits() -> RateLimits:
    return RateLimits.from_config(current_app.config)


def _answer(status: int, message: str, **extra: Any) -> Response:
    """The Notify API's answer: ``{"status": N, "message": "...", ...}`` with status N."""
    response = jsonify({"status": status, "message": message, **extra})
    response.status_code = status
    return response


def _authenticate(*, allow_unreachable: bool = False) -> TokenContext:
    """The request's access token; from here on, answers carry its rate-limit headers."""
    token = service.authenticate_token(
        request.headers.get("Authorization"), allow_unreachable=allow_unreachable
    )
    g.relay_rate_window = token.window
    return token


@bp.before_request
def forget_rate_limit_window() -> None:
    # g lives as long as the app context, which a test (or a CLI) may share between requests.
    g.relay_rate_window = None


@bp.after_request
def add_rate_limit_headers(response: Response) -> Response:
    window = g.get("relay_rate_window")
    if window is not None:
        limits = _limits()
        window = current_window(window, utcnow(), limits)
        response.headers.update(rate_limit_headers(window, limits))
    return response


# --- OAuth -------------------------------------------------------------------------------


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():
    """The consent page: which chat may the requesting service send notifications to?

    A request that fails validation gets an error page, never a redirect (see
    :mod:`notify_site.relay.oauth`); the POST checks the carried parameters again.
    """
    if request.method == "POST":
        form = AuthorizeForm()
        params = request.form
    else:
        form = AuthorizeForm(data=request.args.to_dict())
        params = request.args
    try:
        auth = oauth.parse_authorize_request(params)
    except AuthorizeRequestError as error:
        return _error_page(
            400,
            _("This connection request cannot be used"),
            error.message,
            hint=_(
                "The link that brought you here is incomplete or does not match the service's "
                "registration, so the relay does not send you back to it. Start again from the "
                "service you came from."
            ),
        )

    # Carry the request on exactly as it was understood, whatever the browser sent back.
    for name in oauth.AUTHORIZE_PARAMS:
        getattr(form, name).data = auth.hidden_fields().get(name, "")

    settings = current_settings()
    if settings is not None:
        return _authorize_channel(auth, form, settings)

    config = current_app.config
    chats = oauth.ensure_sandbox_chats(config["RELAY_SANDBOX_USER"], config["RELAY_SANDBOX_GROUPS"])
    form.chat.choices = [(chat.id, oauth.chat_label(chat)) for chat in chats]

    if request.method == "GET":
        form.chat.data = chats[0].id
    elif form.validate():
        if form.cancel.data:
            return _declined(auth)
        if form.agree.data:
            try:
                code = oauth.issue_code(auth, form.chat.data, chats, ttl=config["RELAY_CODE_TTL"])
            except ChatNotAvailableError as error:
                form.chat.errors = [error.message]
            else:
                return _oauth_answer(auth, {"code": code, "state": auth.state})
        else:
            form.form_errors.append(_("Choose “Agree and connect” or “Cancel”."))

    status = 200 if request.method == "GET" else 400
    response = Response(
        render_template("relay/authorize.html", form=form, auth=auth, chats=chats), status
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _authorize_channel(auth: oauth.AuthorizeRequest, form: AuthorizeForm, settings) -> Response:
    """The consent page in channel mode: pair a real LINE chat with a one-time code.

    GET shows a fresh code; the person sends it to the bot from the chat they want, the page
    (polling :func:`line_pairing`) names the chat, and **Agree and connect** issues the
    authorization code for it. Without JavaScript, pressing the button checks the code too.
    """
    now = utcnow()
    notice = None
    if request.method == "POST" and form.validate():
        if form.cancel.data:
            return _declined(auth)
        if form.agree.data:
            chat = pairing.take_pairing(form.pairing.data or "", client_pk=auth.client_pk, now=now)
            if chat is not None:
                code = oauth.issue_code(
                    auth, chat.id, [chat], ttl=current_app.config["RELAY_CODE_TTL"]
                )
                return _oauth_answer(auth, {"code": code, "state": auth.state})
    current = None
    if request.method == "POST":
        state = pairing.pairing_state(form.pairing.data or "", client_pk=auth.client_pk, now=now)
        code = pairing.normalize_code(form.pairing_code.data or "")
        if state.status in (pairing.PairingStatus.WAITING, pairing.PairingStatus.MATCHED) and (
            code is not None
            and pairing.code_belongs(code, form.pairing.data or "")
            and state.reachable
        ):
            current = pairing.NewPairing(code, form.pairing.data, now)
            notice = _(
                "The code has not reached the bot yet. Send it from the chat you want, then "
                "press “Agree and connect” again."
            )
        else:
            notice = _("That code can no longer be used. Here is a new one.")
    if current is None:
        current = pairing.create_pairing(auth.client_pk, ttl=settings.pairing_ttl, now=now)
    form.pairing.data = current.poll_token
    form.pairing_code.data = current.code
    qr_svg = None
    if settings.add_friend_url:
        # segno's own SVG for the configured URL (it escapes the URL): no user input in it.
        import segno

        qr_svg = Markup(segno.make(settings.add_friend_url, error="m").svg_inline(scale=4))  # noqa: S704
    state = pairing.pairing_state(current.poll_token, client_pk=auth.client_pk, now=now)
    response = Response(
        render_template(
            "relay/authorize_line.html",
            form=form,
            auth=auth,
            pairing=current,
            state=state,
            settings=settings,
            qr_svg=qr_svg,
            notice=notice,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _declined(auth: oauth.AuthorizeRequest) -> Response:
    """The answer to **Cancel**: ``access_denied``, as RFC 6749 4.1.2.1 names it."""
    return _oauth_answer(
        auth,
        {
            "error": "access_denied",
            "error_description": "The user declined to connect a chat.",
            "state": auth.state,
        },
    )


def _oauth_answer(auth: oauth.AuthorizeRequest, params: dict[str, str]) -> Response:
    """Send the answer to the client's (verified) redirect URI: a redirect or a POST form."""
    if auth.response_mode == "form_post":
        response = Response(
            render_template("relay/form_post.html", action=auth.redirect_uri, fields=params)
        )
    else:
        response = redirect(oauth.redirect_target(auth.redirect_uri, params), code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/oauth/token")
def token():
    """Exchange an authorization code: ``{"access_token": "..."}``; errors 400 JSON."""
    access_token = oauth.exchange_code(request.form, now=utcnow())
    response = jsonify({"access_token": access_token})
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


# --- The Notify API ----------------------------------------------------------------------


@bp.post("/api/notify")
def api_notify():
    """Deliver a notification to the token's chat (the sandbox inbox).

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
    g.relay_rate_window = service.deliver_notification(
        token, payload, limits=_limits(), now=utcnow()
    )
    return _answer(200, "ok")


@bp.get("/api/status")
def api_status():
    """The token's target; spends one call, as LINE's did."""
    token = _authenticate()
    g.relay_rate_window = service.token_status(token, limits=_limits(), now=utcnow())
    return _answer(200, "ok", targetType=token.chat_kind, target=token.chat_name)


@bp.post("/api/revoke")
def api_revoke():
    """Disable the token at once (also when its chat is unreachable)."""
    token = _authenticate(allow_unreachable=True)
    service.revoke_token(token, now=utcnow())
    return _answer(200, "ok")


# --- The sandbox inbox -------------------------------------------------------------------


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, type=int)
    if value is None or not 1 <= value <= _INT_MAX:
        return None
    return value


def _public_url(endpoint: str, **values: Any) -> str:
    """An absolute URL of a relay route, from configuration, never from the Host header:
    under ``RELAY_PUBLIC_BASE_URL`` when it is set (the relay's public address, from which LINE
    fetches images in channel mode), else at the site's configured origin."""
    base = (current_app.config.get("RELAY_PUBLIC_BASE_URL") or "").rstrip("/")
    if not base:
        return external_url(endpoint, **values)
    mount = request.script_root + current_app.config["RELAY_URL_PREFIX"]
    return base + url_for(endpoint, **values).removeprefix(mount)


def _image_urls(message: RelayMessage, *, absolute: bool = True) -> dict[str, str] | None:
    """The message's image: its URLs as sent, or the uploaded image's URL here (absolute for
    programs reading JSON; a path on the inbox page, which the browser loads from its own
    origin)."""
    if message.image_id is not None:
        if absolute:
            url = _public_url("relay.image", image_id=message.image_id)
        else:
            url = url_for("relay.image", image_id=message.image_id)
        return {"thumbnail_url": url, "fullsize_url": url}
    if message.image_thumbnail_url and message.image_fullsize_url:
        return {
            "thumbnail_url": message.image_thumbnail_url,
            "fullsize_url": message.image_fullsize_url,
        }
    return None


def _message_json(message: RelayMessage, *, absolute: bool = True) -> dict[str, Any]:
    sticker = None
    if message.sticker_package_id is not None and message.sticker_id is not None:
        sticker = {"package_id": message.sticker_package_id, "sticker_id": message.sticker_id}
    return {
        "id": message.id,
        "chat": {"id": message.chat.id, "name": message.chat.name, "type": message.chat.kind},
        "client": message.client_name,
        "message": message.message,
        "sticker": sticker,
        "image": _image_urls(message, absolute=absolute),
        "notification_disabled": message.notification_disabled,
        "created_at": message.created_at.isoformat(),
    }


@bp.get("/inbox")
def inbox():
    """What each sandbox chat received, newest first."""
    chat_id = _int_arg("chat")
    chats = service.list_chats()
    pagination = service.inbox_page(_int_arg("page") or 1, chat_id)
    return render_template(
        "relay/inbox.html",
        pagination=pagination,
        messages=[
            (message, _message_json(message, absolute=False)) for message in pagination.items
        ],
        chats=chats,
        api_notify_url=_public_url("relay.api_notify"),
        chat_id=chat_id,
        selected=service.find_chat(chat_id, chats) if chat_id else None,
        chat_label=oauth.chat_label,
    )


@bp.get("/inbox.json")
def inbox_json():
    """The inbox as JSON (same filters and pages as the HTML page)."""
    pagination = service.inbox_page(_int_arg("page") or 1, _int_arg("chat"))
    return jsonify(
        {
            "messages": [_message_json(message) for message in pagination.items],
            "page": pagination.page,
            "pages": max(pagination.pages, 1),
        }
    )


@bp.get("/images/<int(max=2147483647):image_id>")
def image(image_id: int):
    """An uploaded image, with its detected type and no sniffing."""
    stored = service.get_image(image_id)
    if stored is None:
        abort(404)
    response = Response(stored.data, mimetype=stored.content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


# --- Channel mode: the webhook, pairing, the admin page -----------------------------------


@bp.post("/line/webhook")
def line_webhook():
    """LINE's webhook: signature first, then store, answer 200 at once, process afterwards."""
    settings = current_settings()
    if settings is None:
        abort(404)
    body = request.get_data(cache=False)
    try:
        webhook.check_signature(settings, body, request.headers.get("X-Line-Signature"))
    except webhook.WebhookSignatureError as error:
        log.warning("relay: webhook refused: %s", error)
        return _answer(403, "invalid signature")
    try:
        stored = webhook.store_events(body)
    except webhook.WebhookBodyError as error:
        log.warning("relay: webhook body refused: %s", error)
        return _answer(400, str(error))
    response = _answer(200, "ok")
    if stored.new_ids:
        app = current_app._get_current_object()
        ids = list(stored.new_ids)
        response.call_on_close(lambda: _process_after_response(app, ids))
    return response


def _process_after_response(app, event_ids: list[int]) -> None:
    """Handle the events just stored, after LINE has its 200 (the worker is the backstop)."""
    from notify_site.relay.line import events  # it loads the SDK's event models (channel.py)

    with app.app_context():
        try:
            settings = current_settings()
            if settings is not None:
                events.process_events(settings, event_ids)
        except Exception:
            db.session.rollback()
            log.exception("relay: processing webhook events after the response failed")
        finally:
            db.session.remove()


@bp.get("/line/pairing")
def line_pairing():
    """The consent page's poll: has its code reached the bot, and from which chat?

    The page's polling secret travels in the ``X-Relay-Pairing`` header, not the URL, so
    access logs never record it.
    """
    if current_settings() is None:
        abort(404)
    state = pairing.pairing_state(
        request.headers.get("X-Relay-Pairing", ""), client_pk=None, now=utcnow()
    )
    response = jsonify(state.as_json())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/line/admin")
def line_admin():
    """The channel at a glance, for the site's admins: quota, chats, pushes, webhook events."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not getattr(current_user, "is_admin", False):
        abort(403)
    settings = current_settings()
    report = report_error = None
    if settings is not None:
        try:
            report = quota.channel_report(settings)
        except (ChannelError, ChannelConfigError) as error:
            report_error = str(error)
    overview = service.channel_overview()
    response = Response(
        render_template(
            "relay/line_admin.html",
            settings=settings,
            report=report,
            report_error=report_error,
            **overview,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- Errors ------------------------------------------------------------------------------


def _wants_json() -> bool:
    return request.endpoint in JSON_ENDPOINTS


# The title of a relay error page (Werkzeug's names are English only).
_ERROR_TITLES = {
    400: _l("Bad request"),
    403: _l("Not allowed"),
    404: _l("Not found"),
    405: _l("Method not allowed"),
    413: _l("Too large"),
    429: _l("Too many requests"),
}


def _error_title(status: int, name: str) -> str:
    title = _ERROR_TITLES.get(status)
    return str(title) if title is not None else name


def _error_page(status: int, title: str, message: str, hint: str = "") -> tuple[str, int]:
    page = render_template(
        "relay/error.html", status=status, title=title, message=message, hint=hint
    )
    return page, status


@bp.errorhandler(RelayError)
def relay_error(error: RelayError):
    if isinstance(error, RateLimitExceededError):
        g.relay_rate_window = error.window
    extra = {"reason": error.reason} if getattr(error, "reason", None) else {}
    response = _answer(error.status, error.message, **extra)
    if isinstance(error, InvalidTokenError):
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    status = error.code or 500
    if _wants_json():
        if status == 413:
            limit = current_app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body too large (the limit is {limit} bytes)"
        else:
            message = error.description or error.name
        return _answer(status, message)
    if isinstance(error, CSRFError):
        return _error_page(
            400,
            _("The form expired"),
            _("The form expired or was not sent from this page. Go back, reload it and try again."),
        )
    from notify_site.views.errors import describe

    return _error_page(status, _error_title(status, error.name), describe(error))


@bp.errorhandler(Exception)
def unexpected_error(error: Exception):
    db.session.rollback()
    # The traceback names the code and the SQL, never a token: tokens, codes and secrets only
    # ever reach the database hashed, and request headers are not logged.
    log.error(
        "relay: unexpected %s on %s %s",
        type(error).__name__,
        request.method,
        request.path,
        exc_info=error,
    )
    if _wants_json():
        return _answer(500, "Internal server error")
    return _error_page(500, _("Something went wrong"), _("The relay could not answer; try again."))
