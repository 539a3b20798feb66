"""My page (SPEC 6; line-platform.md A6): ``/my/``, LINE Notify's own path, for a signed-in
person.

* **Generate token**: a name and one of the person's own chats (their sandbox chats; in
  channel mode the LINE chats paired to them, with *Pair a chat* for another). The token is
  in the answer to that POST only — shown once, never stored but as a digest, the page not
  cached — with a copy button and a ready curl line for this relay.
* **Connected services**: every live token of the person (``relay/tokens.py``), each with
  *Disconnect*, which asks first on a page of its own (no script needed) and then revokes.

A visitor is sent to sign in and brought back.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from notify_site.db_types import utcnow
from notify_site.relay import budgets, tokens
from notify_site.relay import chats as relay_chats
from notify_site.relay.accounts import Person, accounts, sign_in_url_here
from notify_site.relay.errors import ChatNotAvailableError, TokenNameError, TokenNotFoundError
from notify_site.relay.forms import ConfirmForm, GenerateTokenForm, PairForm
from notify_site.relay.line import consent, linked
from notify_site.relay.line.channel import current_settings
from notify_site.relay.models import RelayChat
from notify_site.relay.ratelimit import RateLimits
from notify_site.relay.views.blueprint import bp, public_url
from notify_site.relay.views.oauth import pairing_context

# What My page's Pair a chat says when a POST paired nothing.
_PAIR_NOTICES = {
    consent.Notice.NOT_YET: lambda: _(
        "The code has not reached the bot yet. Send it from the chat you want, then "
        "press “Add this chat” again."
    ),
    consent.Notice.NEW_CODE: lambda: _("That code can no longer be used. Here is a new one."),
}


def _offered_chats(person: Person) -> list[RelayChat]:
    """The chats the person may generate a token for: their own (in channel mode, their
    linked LINE chats and those paired to them, ``relay/line/linked.py``)."""
    if current_settings() is None:
        return relay_chats.sandbox_chats_for(person, current_app.config)
    return linked.offered_chats(person)[0]


def _chat_label(person: Person):
    """Names chats as the page shows them: the person's own 1-on-1 chat as "with you"."""
    own_id = person.line_user_id

    def label(chat: RelayChat) -> str:
        if own_id is not None and chat.line_id == own_id:
            return _("1-on-1 chat with you")
        return relay_chats.chat_label(chat)

    return label


def _page(
    person: Person,
    form: GenerateTokenForm,
    offered: list[RelayChat],
    *,
    new_token: str | None = None,
    new_token_chat: RelayChat | None = None,
    status: int = 200,
) -> Response:
    now = utcnow()
    services = tokens.connected_services(
        person.id, limits=RateLimits.from_config(current_app.config), now=now
    )
    settings = current_settings()
    # A person linked to LINE whose own chat is not on offer: not a friend of the bot yet.
    own_missing = (
        settings is not None
        and person.line_user_id is not None
        and all(chat.line_id != person.line_user_id for chat in offered)
    )
    response = Response(
        render_template(
            "relay/my.html",
            form=form,
            offered=offered,
            services=services,
            new_token=new_token,
            new_token_chat=new_token_chat,
            api_notify_url=public_url("relay.api_notify"),
            channel_mode=settings is not None,
            add_friend_url=settings.add_friend_url if own_missing else None,
            chat_label=_chat_label(person),
            units=budgets.token_figures([s.token_pk for s in services], current_app.config, now),
        ),
        status,
    )
    # The page may hold a token shown once: no cache may keep it.
    response.headers["Cache-Control"] = "no-store"
    return response


def _choices(form: GenerateTokenForm, offered: list[RelayChat]) -> None:
    person = accounts().current_person()
    label = _chat_label(person) if person else relay_chats.chat_label
    form.chat.choices = [(chat.id, label(chat)) for chat in offered]


@bp.get("/my/")
def my_page():
    """My page: generate a personal access token; every token of the person."""
    person = accounts().current_person()
    if person is None:
        return redirect(sign_in_url_here())
    offered = _offered_chats(person)
    form = GenerateTokenForm()
    _choices(form, offered)
    if offered and form.chat.data is None:
        form.chat.data = offered[0].id
    return _page(person, form, offered)


@bp.post("/my/tokens")
def generate_token():
    """*Generate token*: the token is in this answer, and nowhere else, ever."""
    person = accounts().current_person()
    if person is None:
        return redirect(url_for("relay.my_page"))
    offered = _offered_chats(person)
    form = GenerateTokenForm()
    _choices(form, offered)
    if form.validate():
        try:
            if current_settings() is not None:
                # A linked LINE chat picked here is the person's from now on (no commit yet:
                # the token's commit carries it, or a refusal drops it).
                picked = next((chat for chat in offered if chat.id == form.chat.data), None)
                if picked is not None:
                    linked.keep(picked, person.id)
            token = tokens.generate_personal_token(
                person.id, form.name.data, form.chat.data, offered
            )
        except TokenNameError as error:
            form.name.errors = [error.message]
        except ChatNotAvailableError as error:
            form.chat.errors = [error.message]
        else:
            chat = next(chat for chat in offered if chat.id == form.chat.data)
            fresh = GenerateTokenForm(formdata=None)
            _choices(fresh, offered)
            fresh.chat.data = chat.id
            return _page(person, fresh, offered, new_token=token, new_token_chat=chat)
    return _page(person, form, offered, status=400)


def _own_service(person: Person, token_pk: int) -> tokens.ConnectedService:
    limits = RateLimits.from_config(current_app.config)
    for service in tokens.connected_services(person.id, limits=limits, now=utcnow()):
        if service.token_pk == token_pk:
            return service
    abort(404)


@bp.route("/my/tokens/<int(max=2147483647):token_pk>/disconnect", methods=["GET", "POST"])
def disconnect(token_pk: int):
    """*Disconnect*: a page that asks, then a POST that revokes the token at once."""
    person = accounts().current_person()
    if person is None:
        return redirect(sign_in_url_here() if request.method == "GET" else url_for("relay.my_page"))
    form = ConfirmForm()
    if request.method == "POST" and form.validate():
        try:
            name = tokens.disconnect(person.id, token_pk, now=utcnow())
        except TokenNotFoundError as error:
            flash(error.message, "error")
        else:
            flash(_("“%(name)s” is disconnected: its token no longer works.", name=name), "success")
        return redirect(url_for("relay.my_page"))
    service = _own_service(person, token_pk)
    return render_template(
        "relay/my_disconnect.html", form=form, service=service, chat_label=relay_chats.chat_label
    )


@bp.route("/my/pair", methods=["GET", "POST"])
def pair_chat():
    """Channel mode: pair another LINE chat to the person with a one-time code."""
    settings = current_settings()
    if settings is None:
        abort(404)
    person = accounts().current_person()
    if person is None:
        return redirect(sign_in_url_here() if request.method == "GET" else url_for("relay.my_page"))
    now = utcnow()
    form = PairForm()
    if request.method == "GET":
        page = consent.new_page(None, person.id, settings, now=now)
    else:
        if form.validate():
            chat = consent.confirm(form.pairing.data or "", person_id=person.id, now=now)
            if chat is not None:
                flash(
                    _(
                        "%(chat)s is paired: generate a token for it below.",
                        chat=relay_chats.chat_label(chat),
                    ),
                    "success",
                )
                return redirect(url_for("relay.my_page"))
        page = consent.page_after_refusal(
            None,
            person.id,
            settings,
            poll_token=form.pairing.data or "",
            shown_code=form.pairing_code.data or "",
            now=now,
        )
    form.pairing.data = page.pairing.poll_token
    form.pairing_code.data = page.pairing.code
    context: dict[str, Any] = pairing_context(page, settings, _PAIR_NOTICES)
    response = Response(render_template("relay/my_pair.html", form=form, **context))
    response.headers["Cache-Control"] = "no-store"
    return response
