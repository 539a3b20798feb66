"""The relay's OAuth endpoints (SPEC 5): the consent page and the token exchange.

A request that fails validation gets an error page, never a redirect (see
:mod:`notify_site.relay.oauth`); the consent form's POST checks the carried parameters again.
The consent page is a signed-in person's (a visitor is sent to sign in and brought back, as
LINE asked for a LINE login): it offers only that person's own chats — their private sandbox
chats, or in channel mode the LINE chats paired to them and a code to pair another
(:mod:`notify_site.relay.line.consent`) — and the token it leads to is theirs.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from notify_site.db_types import utcnow
from notify_site.relay import chats as relay_chats
from notify_site.relay import oauth
from notify_site.relay.accounts import Person, accounts
from notify_site.relay.errors import AuthorizeRequestError, ChatNotAvailableError
from notify_site.relay.forms import AuthorizeForm
from notify_site.relay.line import consent, linked
from notify_site.relay.line.channel import ChannelSettings, current_settings
from notify_site.relay.models import RelayChat
from notify_site.relay.views.blueprint import bp
from notify_site.relay.views.errors import error_page

# What a channel-mode pairing page says when a POST paired nothing.
NOTICES = {
    consent.Notice.NOT_YET: lambda: _(
        "The code has not reached the bot yet. Send it from the chat you want, then "
        "press “Agree and connect” again."
    ),
    consent.Notice.NEW_CODE: lambda: _("That code can no longer be used. Here is a new one."),
}


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():
    """The consent page: which chat may the requesting service send notifications to?"""
    if request.method == "POST":
        form = AuthorizeForm()
        params = request.form
    else:
        form = AuthorizeForm(data=request.args.to_dict())
        params = request.args
    try:
        auth = oauth.parse_authorize_request(params)
    except AuthorizeRequestError as error:
        return error_page(
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

    person = accounts().current_person()
    if person is None:
        # A valid request from a visitor: sign in first, then back to this very request.
        return _to_sign_in(auth)

    settings = current_settings()
    if settings is not None:
        return _authorize_channel(auth, form, settings, person)

    config = current_app.config
    chats = relay_chats.sandbox_chats_for(person, config)
    form.chat.choices = [(chat.id, relay_chats.chat_label(chat)) for chat in chats]

    if request.method == "GET":
        form.chat.data = chats[0].id
    elif form.validate():
        if form.cancel.data:
            return _declined(auth)
        if form.agree.data:
            try:
                code = oauth.issue_code(
                    auth, form.chat.data, chats, person_id=person.id, ttl=config["RELAY_CODE_TTL"]
                )
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


def _to_sign_in(auth: oauth.AuthorizeRequest) -> Response:
    """To the sign-in page, coming back to the consent page with the request as understood
    (a POST's form becomes a GET's query string)."""
    back = url_for("relay.authorize", **auth.hidden_fields())
    response = redirect(accounts().sign_in_url(back))
    response.headers["Cache-Control"] = "no-store"
    return response


def _authorize_channel(
    auth: oauth.AuthorizeRequest, form: AuthorizeForm, settings: ChannelSettings, person: Person
) -> Response:
    """The consent page in channel mode: the person's own LINE chats when their account is
    linked to LINE (``relay/line/linked.py``), those paired to them, or pair another with a
    one-time code."""
    now = utcnow()
    ttl = current_app.config["RELAY_CODE_TTL"]
    offered, own = linked.offered_chats(person)
    form.chat.choices = [(chat.id, offered_label(chat, own)) for chat in offered]
    if request.method == "GET":
        page = consent.new_page(auth.client_pk, person.id, settings, now=now)
        form.chat.data = offered[0].id if offered else None
    else:
        if form.validate():
            if form.cancel.data:
                return _declined(auth)
            if form.agree.data:
                if form.chat.data is not None:
                    code = _agree_offered(auth, form, offered, settings, person, ttl)
                else:
                    code = consent.agree(
                        auth, form.pairing.data or "", person_id=person.id, now=now, ttl=ttl
                    )
                if code is not None:
                    return _oauth_answer(auth, {"code": code, "state": auth.state})
        if form.chat.errors:  # a group LINE says they left: offered no more
            offered, own = linked.offered_chats(person)
            form.chat.choices = [(chat.id, offered_label(chat, own)) for chat in offered]
        page = consent.page_after_refusal(
            auth.client_pk,
            person.id,
            settings,
            poll_token=form.pairing.data or "",
            shown_code=form.pairing_code.data or "",
            now=now,
        )
    form.pairing.data = page.pairing.poll_token
    form.pairing_code.data = page.pairing.code
    response = Response(
        render_template(
            "relay/authorize_line.html",
            form=form,
            auth=auth,
            paired=offered,
            line_linked=person.line_user_id is not None,
            own_chat_missing=person.line_user_id is not None and own is None,
            **pairing_context(page, settings, NOTICES),
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _agree_offered(
    auth: oauth.AuthorizeRequest,
    form: AuthorizeForm,
    offered: list[RelayChat],
    settings: ChannelSettings,
    person: Person,
    ttl: int,
) -> str | None:
    """**Agree and connect** with a chat on offer; a group known from the webhook only is
    checked with LINE first (``linked.still_member``)."""
    picked = next((chat for chat in offered if chat.id == form.chat.data), None)
    if picked is None:
        return None
    if not linked.still_member(settings, picked, person):
        form.chat.errors = [_("You are no longer a member of that group.")]
        return None
    return consent.agree_offered(auth, picked.id, offered, person_id=person.id, ttl=ttl)


def offered_label(chat: RelayChat, own: RelayChat | None) -> str:
    """How an offered LINE chat is named: the person's own 1-on-1 chat as LINE Notify did."""
    if own is not None and chat.id == own.id:
        return _("1-on-1 chat with you")
    return relay_chats.chat_label(chat)


def pairing_context(
    page: consent.ConsentPage, settings: ChannelSettings, notices: dict[consent.Notice, Any]
) -> dict[str, Any]:
    """What a page that pairs a LINE chat shows (templates/relay/_pairing.html); ``notices``
    word why a POST paired nothing, in the page's own terms."""
    qr_svg = consent.add_friend_qr_svg(settings)
    return {
        "pairing": page.pairing,
        "state": page.state,
        "settings": settings,
        # segno's own SVG for the configured URL (it escapes the URL): no user input in it.
        "qr_svg": Markup(qr_svg) if qr_svg else None,  # noqa: S704
        "notice": notices[page.notice]() if page.notice else None,
    }


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
