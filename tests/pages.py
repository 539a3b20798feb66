"""Every route of the app and what it answers: the one list that the all-pages smoke test
(tests/unit/test_smoke_pages.py) walks in every language, and that browser audits can walk too.

The answers are those to an admin signed in over the data of
:func:`tests.factories.seed_every_page` (``anonymous=True``: to a visitor), with the app
configured by :data:`SMOKE_CONFIG`; :func:`channel_pages` gives the relay's pages as they
answer with a LINE channel configured (data: :func:`tests.factories.seed_line_channel`).

:func:`pages_for` reads the app's URL map, so most routes need no entry here:

* a GET route without URL arguments is covered as it is, expected to answer 200 (JSON when
  its path ends in ``.json``);
* a route without GET (a POST-only action) is covered by a GET that must answer 405;
* a GET route **with** URL arguments, or one that answers anything but 200, needs a
  :class:`Page` in :data:`LISTED`: :func:`pages_for` raises :class:`UnlistedRouteError`
  naming it until it has one.

To add a route: usually nothing. If the smoke test names your endpoint, add
``Page("blueprint.endpoint", args=lambda d: {...}, status=..., kind=...)`` to ``LISTED``, with
its URL arguments taken from the seeded :class:`~tests.factories.PageData` (add what the page
needs to ``seed_every_page``, so that the page shows data rather than its empty state).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flask import Flask, url_for

from notify_site import create_app
from tests.conftest import make_test_config
from tests.factories import PageData

#: Configuration the page list assumes (on top of tests.conftest.make_test_config).
SMOKE_CONFIG: dict[str, Any] = {
    "METRICS_TOKEN": "smoke-metrics-token",
    # Sign in with LINE on (no page below calls LINE): the sign-in and Settings pages show it.
    "LINE_LOGIN_CHANNEL_ID": "2001234567",
    "LINE_LOGIN_CHANNEL_SECRET": "smoke-line-login-secret",
}

#: What a page answers: "html" (a whole page), "fragment" (part of a page, fetched by a script),
#: "json", "text", "file" (an image, a stylesheet...), or None: whatever it answers (a 405).
KINDS = ("html", "fragment", "json", "text", "file", None)


def _no_args(data: PageData) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Page:
    """A route as the smoke test requests it.

    ``args`` gives ``url_for``'s values (URL arguments and query string) from the seeded data,
    ``headers`` any request headers (an API key...); ``status`` and ``kind`` are what the
    answer must be.
    """

    endpoint: str
    args: Callable[[PageData], dict[str, Any]] = _no_args
    status: int = 200
    kind: str | None = "html"
    headers: Callable[[PageData], dict[str, str]] = field(default=lambda data: {})
    anonymous: bool = False
    #: The status in the relay's channel mode (a LINE channel configured), when it differs.
    channel_status: int | None = None

    def url(self, data: PageData) -> str:
        """The page's path; call it inside a request (or app) context of the app."""
        return url_for(self.endpoint, **self.args(data))

    def label(self) -> str:
        return self.endpoint if self.status == 200 else f"{self.endpoint}:{self.status}"


def _api_key(data: PageData) -> dict[str, str]:
    return {"Authorization": f"Bearer {data.api_key}"}


def _relay_token(data: PageData) -> dict[str, str]:
    return {"Authorization": f"Bearer {data.relay_token}"}


def _own_notifications(data: PageData) -> dict[str, Any]:
    n = data.notifications
    ids = [n["queued"], n["delivered"], n["failed"], n["sticker"], n["image"], n["at_server"]]
    return {"ids": ",".join(str(i) for i in ids)}


def _authorize(data: PageData) -> dict[str, Any]:
    return {
        "response_type": "code",
        "client_id": data.relay_client_id,
        "redirect_uri": data.relay_redirect_uri,
        "scope": "notify",
        "state": "smoke-state",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }


LISTED: dict[str, Page] = {
    page.endpoint: page
    for page in [
        # Signed in, these send you on (to the dashboard): they are checked signed out.
        Page("auth.login", anonymous=True),
        Page("main.index", anonymous=True),
        Page("static", args=lambda d: {"filename": "css/site.css"}, kind="file"),
        Page("api_docs.asset", args=lambda d: {"name": "swagger-ui.css"}, kind="file"),
        Page("web.static", args=lambda d: {"filename": "css/base.css"}, kind="file"),
        Page("relay.static", args=lambda d: {"filename": "relay/line.css"}, kind="file"),
        Page("relay.image", args=lambda d: {"public_id": d.relay_image_public_id}, kind="file"),
        Page(
            "relay.image_preview",
            args=lambda d: {"public_id": d.relay_image_public_id},
            kind="file",
        ),
        Page("relay.disconnect", args=lambda d: {"token_pk": d.relay_token_pk}),
        # Channel mode only (a LINE channel configured): 404 in the sandbox.
        Page("relay.pair_chat", status=404, channel_status=200),
        Page("main.healthz", kind="json"),
        Page("main.favicon", kind="file"),
        Page(
            "metrics.metrics_view",
            kind="text",
            headers=lambda d: {"Authorization": f"Bearer {SMOKE_CONFIG['METRICS_TOKEN']}"},
        ),
        # Opened without the relay's answer: the callback's "this link cannot be used" page.
        Page("connections.callback", status=400),
        # The same for LINE's answer (no state: refused, with its own page).
        Page("line_login.callback", status=400),
        Page("send.status", args=_own_notifications),
        Page("send.status_json", args=_own_notifications, kind="json"),
        Page("dashboard.chart", kind="fragment"),
        Page("dashboard.parts", kind="fragment"),
        Page("admin.charts_fragment", kind="fragment"),
        Page("admin.parts", kind="fragment"),
        Page("admin.notifications_json", args=lambda d: {"list": "failed"}, kind="json"),
        Page("api.list_connections", kind="json", headers=_api_key),
        Page("api.list_notifications", kind="json", headers=_api_key),
        Page(
            "api.get_connection",
            args=lambda d: {"connection_id": d.connections["ops"]},
            kind="json",
            headers=_api_key,
        ),
        Page(
            "api.get_notification",
            args=lambda d: {"notification_id": d.notifications["failed"]},
            kind="json",
            headers=_api_key,
        ),
        Page("api.list_webhooks", kind="json", headers=_api_key),
        Page(
            "api.get_webhook",
            args=lambda d: {"webhook_id": d.webhooks["prom"]},
            kind="json",
            headers=_api_key,
        ),
        Page("webhooks.detail", args=lambda d: {"webhook_id": d.webhooks["prom"]}),
        Page("webhooks.delete", args=lambda d: {"webhook_id": d.webhooks["paused"]}),
        Page("api.list_schedules", kind="json", headers=_api_key),
        Page(
            "api.get_schedule",
            args=lambda d: {"schedule_id": d.schedules["daily"]},
            kind="json",
            headers=_api_key,
        ),
        Page("schedules.detail", args=lambda d: {"schedule_id": d.schedules["daily"]}),
        Page("relay.authorize", args=_authorize),
        Page("relay.api_status", kind="json", headers=_relay_token),
        # Channel mode's extension: a message id the token did not send is not found.
        Page(
            "relay.api_message",
            args=lambda d: {"message_id": "no-such-message"},
            status=404,
            kind="json",
            headers=_relay_token,
        ),
        # POST-only API actions: a GET answers the API's own 405.
        *(
            Page(endpoint, args=args, status=405, kind="json", headers=_api_key)
            for endpoint, args in [
                (
                    "api.cancel_notification",
                    lambda d: {"notification_id": d.notifications["later"]},
                ),
                ("api.pause_schedule", lambda d: {"schedule_id": d.schedules["daily"]}),
                ("api.resume_schedule", lambda d: {"schedule_id": d.schedules["paused"]}),
            ]
        ),
        # Channel mode only (a LINE channel configured): 404 in the sandbox.
        Page("relay.line_pairing", status=404, kind="json", channel_status=200),
        # POST-only actions with URL arguments: a GET must answer 405 in every language.
        *(
            Page(endpoint, args=args, status=405, kind=None)
            for endpoint, args in [
                ("connections.refresh", lambda d: {"connection_id": d.connections["ops"]}),
                ("connections.revoke", lambda d: {"connection_id": d.connections["ops"]}),
                ("connections.rename", lambda d: {"connection_id": d.connections["ops"]}),
                ("connections.remove", lambda d: {"connection_id": d.connections["revoked"]}),
                ("api_keys.revoke", lambda d: {"key_id": 1}),
                ("admin.retry", lambda d: {"notification_id": d.notifications["failed"]}),
                ("admin.cancel", lambda d: {"notification_id": d.notifications["queued"]}),
                ("admin_users.disable", lambda d: {"user_id": d.user_id}),
                ("admin_users.enable", lambda d: {"user_id": d.user_id}),
                ("admin_users.make_admin", lambda d: {"user_id": d.user_id}),
                ("admin_users.remove_admin", lambda d: {"user_id": d.user_id}),
                ("webhooks.preview", lambda d: {"webhook_id": d.webhooks["prom"]}),
                ("webhooks.send_test", lambda d: {"webhook_id": d.webhooks["prom"]}),
                ("webhooks.regenerate", lambda d: {"webhook_id": d.webhooks["prom"]}),
                ("webhooks.pause", lambda d: {"webhook_id": d.webhooks["prom"]}),
                ("webhooks.resume", lambda d: {"webhook_id": d.webhooks["paused"]}),
                ("hooks.receive", lambda d: {"webhook_id": d.webhooks["prom"]}),
                (
                    "hooks.receive_with_secret",
                    lambda d: {"webhook_id": d.webhooks["prom"], "secret": "whk_x"},
                ),
                ("schedules.cancel", lambda d: {"notification_id": d.notifications["later"]}),
                ("schedules.pause", lambda d: {"schedule_id": d.schedules["daily"]}),
                ("schedules.resume", lambda d: {"schedule_id": d.schedules["paused"]}),
                ("schedules.delete", lambda d: {"schedule_id": d.schedules["daily"]}),
            ]
        ),
    ]
}


def channel_pages(pages: list[Page]) -> list[Page]:
    """The relay's pages as they answer in channel mode (:func:`tests.factories.seed_line_channel`
    adds the data): the site's pages do not change with the relay's mode."""
    return [
        replace(page, status=page.channel_status or page.status)
        for page in pages
        if page.endpoint.startswith("relay.")
    ]


@contextmanager
def collection_app() -> Iterator[Flask]:
    """An app to read the URL map from while tests are collected (no database is touched)."""
    with tempfile.TemporaryDirectory() as tmp:
        yield create_app(make_test_config(Path(tmp), DATABASE_URL="sqlite://", **SMOKE_CONFIG))


class UnlistedRouteError(LookupError):
    """A route the page list cannot request by itself: it needs an entry in ``LISTED``."""


def pages_for(app: Flask) -> list[Page]:
    """Every route of ``app`` as a :class:`Page`, in the URL map's order (see the module)."""
    rules = list(app.url_map.iter_rules())
    get_paths = {rule.rule for rule in rules if "GET" in (rule.methods or ())}
    pages: list[Page] = []
    unlisted: list[str] = []
    for rule in rules:
        listed = LISTED.get(rule.endpoint)
        if listed is not None:
            pages.append(listed)
        elif "GET" not in (rule.methods or ()):
            if rule.rule in get_paths:
                continue  # e.g. POST /connections: a GET there is the page's own route
            if rule.arguments:
                unlisted.append(f"{rule.endpoint} ({rule.rule}): give its URL arguments")
            else:
                kind = "json" if rule.rule.endswith(".json") else None
                pages.append(Page(rule.endpoint, status=405, kind=kind))
        elif rule.arguments:
            unlisted.append(f"{rule.endpoint} ({rule.rule}): give its URL arguments")
        else:
            kind = "json" if rule.rule.endswith(".json") else "html"
            pages.append(Page(rule.endpoint, kind=kind))
    if unlisted:
        raise UnlistedRouteError(
            "routes missing from tests/pages.py LISTED: " + "; ".join(sorted(unlisted))
        )
    stale = set(LISTED) - {rule.endpoint for rule in rules}
    if stale:
        raise UnlistedRouteError(f"LISTED names endpoints the app does not have: {sorted(stale)}")
    return pages
