"""The sandbox inbox (SPEC 5): what each chat received, as a page and as JSON, and the
images uploaded with the messages.

Open to anyone today; SPEC 6 gives each account its own chats, and these views will then
filter by the signed-in person from the accounts port (:mod:`notify_site.relay.accounts`).
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, jsonify, render_template, request, url_for

from notify_site.relay import oauth, service
from notify_site.relay.models import RelayMessage
from notify_site.relay.views.blueprint import bp
from notify_site.security import external_url

_INT_MAX = 2**31 - 1


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
