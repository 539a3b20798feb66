"""Where the two houses are joined: the only module of the site that imports the relay.

:func:`notify_site.create_app` calls :func:`join_relay`; an import-linter contract
(``pyproject.toml``) keeps every other module of the site away from ``notify_site.relay``.
The relay learns who is signed in through :class:`SiteAccounts`, the site's side of the
relay's accounts port (:mod:`notify_site.relay.accounts`).
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, url_for
from flask_login import current_user, login_url

from notify_site import relay
from notify_site.relay.accounts import Person
from notify_site.services import accounts


class SiteAccounts:
    """The site's accounts, as the relay asks for them (``relay.accounts.Accounts``)."""

    def current_person(self) -> Person | None:
        if not current_user.is_authenticated:
            return None
        return Person(
            id=current_user.id,
            display_name=current_user.username,
            is_admin=bool(current_user.is_admin),
            line_user_id=current_user.line_user_id,
            line_friend=current_user.line_friend,
        )

    def is_admin(self, person_id: int) -> bool:
        return accounts.is_admin(person_id)

    def display_names(self, person_ids: Iterable[int]) -> dict[int, str]:
        return accounts.usernames(person_ids)

    def sign_in_url(self, next_url: str) -> str:
        return login_url("auth.login", next_url=next_url)

    def language_url(self) -> str:
        return url_for("settings.language")


def join_relay(app: Flask) -> None:
    """The relay's columns join the key ring's registry whether or not the relay is mounted
    (its rows stay in the shared database, and rotation must still move them); the relay is
    mounted, with the site's accounts, unless ``RELAY_ENABLED`` is false."""
    relay.init_keyring(app)
    if app.config["RELAY_ENABLED"]:
        relay.init_app(app, accounts=SiteAccounts())
