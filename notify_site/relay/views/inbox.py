"""The inbox (SPEC 5 and 6): what each chat received, as a page and as JSON, and the images
uploaded with the messages. Private:

* the page and the JSON show the signed-in person's own chats (an admin's: every chat); a
  visitor is sent to sign in (the page) or answered 401 (the JSON);
* ``inbox.json`` also takes a Notify access token as ``Authorization: Bearer`` and then
  answers that token's chat only, so a script holding only its token can read what it sent;
* an uploaded image (``/images/<public_id>``, a random id) is served to whoever may read its
  chat — by session, by the chat's token as Bearer, or by the signed URL the relay gave LINE
  (``relay/inbox.py``) — and is a 404 to everyone else, as an unknown id is.

A ``chat`` filter naming a chat the reader may not read is a 404 too: it tells nothing.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from notify_site.plain_text import ID_MAX
from notify_site.relay import chats as relay_chats
from notify_site.relay import inbox as relay_inbox
from notify_site.relay import service
from notify_site.relay.accounts import Person, accounts, sign_in_url_here
from notify_site.relay.errors import InvalidTokenError
from notify_site.relay.line.channel import current_settings
from notify_site.relay.models import RelayChat, RelayMessage
from notify_site.relay.previews import preview_of
from notify_site.relay.views.blueprint import bp, public_url
from notify_site.relay.views.errors import answer


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, type=int)
    if value is None or not 1 <= value <= ID_MAX:
        return None
    return value


def _image_urls(message: RelayMessage, *, absolute: bool = True) -> dict[str, str] | None:
    """The message's image: its URLs as sent, or the uploaded image's URL here (absolute for
    programs reading JSON; a path on the inbox page, which the browser loads from its own
    origin)."""
    if message.image is not None:
        public_id = message.image.public_id
        if absolute:
            url = public_url("relay.image", public_id=public_id)
        else:
            url = url_for("relay.image", public_id=public_id)
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


def _readable_chats(person: Person) -> list[RelayChat]:
    """The chats the person reads: in the sandbox their own chats are made on first sight."""
    if current_settings() is None:
        relay_chats.sandbox_chats_for(person, current_app.config)
    return relay_chats.visible_chats(person)


def _owner_names(chats: list[RelayChat], person: Person) -> dict[int, str]:
    """For an admin, who each sandbox chat belongs to (several people's chats share names)."""
    if not person.is_admin:
        return {}
    owners = {chat.owner_id for chat in chats if chat.owner_id is not None}
    return accounts().display_names(owners) if owners else {}


@bp.get("/inbox")
def inbox():
    """What the person's chats received, newest first (an admin: every chat)."""
    person = accounts().current_person()
    if person is None:
        return redirect(sign_in_url_here())
    chats = _readable_chats(person)
    chat_id = _int_arg("chat")
    selected = next((chat for chat in chats if chat.id == chat_id), None)
    if chat_id is not None and selected is None:
        abort(404)
    chat_ids = [chat_id] if chat_id is not None else [chat.id for chat in chats]
    pagination = relay_inbox.inbox_page(
        None if person.is_admin and chat_id is None else chat_ids, _int_arg("page") or 1
    )
    response = Response(
        render_template(
            "relay/inbox.html",
            pagination=pagination,
            messages=[
                (message, _message_json(message, absolute=False)) for message in pagination.items
            ],
            chats=chats,
            owners=_owner_names(chats, person),
            api_notify_url=public_url("relay.api_notify"),
            chat_id=chat_id,
            selected=selected,
            chat_label=relay_chats.chat_label,
        )
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/inbox.json")
def inbox_json():
    """The inbox as JSON (same filters and pages as the HTML page); with a Notify access
    token as Bearer, that token's chat only."""
    if request.headers.get("Authorization") is not None:
        token = service.authenticate_token(
            request.headers.get("Authorization"), allow_unreachable=True
        )
        allowed: list[int] | None = [token.chat_id]
    else:
        person = accounts().current_person()
        if person is None:
            return answer(401, "Sign in, or send a Notify access token as Bearer")
        allowed = [chat.id for chat in _readable_chats(person)]
        if person.is_admin:
            allowed = None
    chat_id = _int_arg("chat")
    if chat_id is not None:
        if allowed is not None and chat_id not in allowed:
            return answer(404, "No such chat")
        allowed = [chat_id]
    pagination = relay_inbox.inbox_page(allowed, _int_arg("page") or 1)
    response = jsonify(
        {
            "messages": [_message_json(message) for message in pagination.items],
            "page": pagination.page,
            "pages": max(pagination.pages, 1),
        }
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _may_fetch(public_id: str, chat_id: int) -> bool:
    """Whether this request may have the image of ``chat_id``: a signed URL, the chat's token
    as Bearer, or a signed-in person who reads the chat."""
    if relay_inbox.signature_opens(public_id, request.args.get("s")):
        return True
    if request.headers.get("Authorization") is not None:
        try:
            token = service.authenticate_token(
                request.headers.get("Authorization"), allow_unreachable=True
            )
        except InvalidTokenError:
            return False
        return token.chat_id == chat_id
    person = accounts().current_person()
    return person is not None and relay_chats.may_see_chat(person, chat_id)


@bp.get("/images/<string(maxlength=32):public_id>")
def image(public_id: str):
    """An uploaded image, with its detected type and no sniffing, to those who may see it."""
    found = relay_inbox.find_image(public_id)
    if found is None or not _may_fetch(public_id, found[1]):
        abort(404)
    stored = found[0]
    return _image_response(stored.data, stored.content_type)


@bp.get("/images/<string(maxlength=32):public_id>/preview")
def image_preview(public_id: str):
    """The image within LINE's 1 MB limit for previews (relay/previews.py), to the same
    readers (LINE: with the image's signed URL)."""
    found = relay_inbox.find_image(public_id)
    if found is None or not _may_fetch(public_id, found[1]):
        abort(404)
    return _image_response(*preview_of(found[0].data, found[0].content_type))


def _image_response(data: bytes, content_type: str) -> Response:
    response = Response(data, mimetype=content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response
