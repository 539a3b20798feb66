"""The relay's one blueprint, ``relay``, which every module of :mod:`notify_site.relay.views`
adds its routes to (so endpoints keep short names: ``relay.authorize``, ``relay.inbox``).

Its templates and static files are the relay's own (``relay/templates``, ``relay/static``);
every page it renders knows who is signed in through the accounts port
(:mod:`notify_site.relay.accounts`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, request, url_for

from notify_site.relay.accounts import accounts, sign_in_url_here
from notify_site.security import external_url

bp = Blueprint(
    "relay",
    __name__,
    root_path=str(Path(__file__).resolve().parent.parent),
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


@bp.context_processor
def signed_in_person() -> dict[str, Any]:
    """The layout's header and footer: who is signed in, where to sign in, where the
    language switcher posts."""
    port = accounts()
    return {
        "relay_person": port.current_person(),
        "relay_sign_in_url": sign_in_url_here(),
        "relay_language_url": port.language_url(),
    }


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute URL of a relay route, from configuration, never from the Host header:
    under ``RELAY_PUBLIC_BASE_URL`` when it is set (the relay's public address, from which LINE
    fetches images in channel mode), else at the site's configured origin. For text people
    copy (a curl line) and URLs programs follow (an image in JSON)."""
    base = (current_app.config.get("RELAY_PUBLIC_BASE_URL") or "").rstrip("/")
    if not base:
        return external_url(endpoint, **values)
    mount = request.script_root + current_app.config["RELAY_URL_PREFIX"]
    return base + url_for(endpoint, **values).removeprefix(mount)
