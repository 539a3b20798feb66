"""The inbox (SPEC 5 and 6): what was delivered to the chats a reader may read, and the images
uploaded with it.

Who reads what is decided by the views from :mod:`notify_site.relay.chats` (a person: their
own chats, an admin: all) or from a Notify access token (its chat only); this module pages
through the messages of the chats it is given and finds uploaded images.

An uploaded image is served at ``/images/<public_id>`` (a random id, never the row id) to
whoever may read its chat. The Messaging API, which fetches the images of channel-mode pushes
from the relay with no session and no token, gets the same URL with a signature
(:func:`signed_image_query`): an HMAC of the public id under the app's ``SECRET_KEY``, so only
URLs the relay handed out open an image without signing in.
"""

from __future__ import annotations

from collections.abc import Collection

from flask import current_app
from flask_sqlalchemy.pagination import Pagination
from itsdangerous import BadSignature, Signer
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from notify_site.extensions import db
from notify_site.relay.models import RelayImage, RelayMessage

INBOX_PAGE_SIZE = 50
_IMAGE_SALT = "notify_site.relay.image-url"


def inbox_page(
    chat_ids: Collection[int] | None, page: int, per_page: int = INBOX_PAGE_SIZE
) -> Pagination:
    """One page of the messages delivered to ``chat_ids`` (None: every chat), newest first."""
    query = select(RelayMessage).options(
        joinedload(RelayMessage.chat), joinedload(RelayMessage.image)
    )
    if chat_ids is not None:
        query = query.where(RelayMessage.chat_id.in_(list(chat_ids)))
    query = query.order_by(RelayMessage.id.desc())
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def find_image(public_id: str) -> tuple[RelayImage, int] | None:
    """An uploaded image and the chat its message went to, or None."""
    row = db.session.execute(
        select(RelayImage, RelayMessage.chat_id)
        .join(RelayMessage, RelayMessage.image_id == RelayImage.id)
        .where(RelayImage.public_id == public_id)
    ).first()
    return (row[0], row[1]) if row is not None else None


def _signer() -> Signer:
    return Signer(current_app.config["SECRET_KEY"], salt=_IMAGE_SALT)


def signed_image_query(public_id: str) -> str:
    """The query string that opens the image without a session (for the Messaging API)."""
    signature = _signer().get_signature(public_id).decode("ascii")
    return f"s={signature}"


def signature_opens(public_id: str, signature: str | None) -> bool:
    """Whether ``signature`` is the one :func:`signed_image_query` gives for ``public_id``."""
    if not signature:
        return False
    try:
        return _signer().verify_signature(public_id, signature)
    except BadSignature:
        return False
