"""Who is signed in, as far as the relay needs to know: the accounts port.

The relay keeps no accounts of its own and never reads the site's: whoever builds the app
hands :func:`notify_site.relay.init_app` an object with the methods of :class:`Accounts`
(``create_app`` hands the site's accounts, see ``notify_site/wiring.py``). Every relay page
that depends on the person asks it through :func:`accounts`: the LINE channel page (admins
only), the layout's header, the consent page, My page and the private inbox (SPEC 6), whose
rows are keyed on :attr:`Person.id`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from flask import Flask, current_app, request

_EXTENSION = "notify_site.relay.accounts"


@dataclass(frozen=True)
class Person:
    """The signed-in person: a stable id (rows of the relay may refer to it), the name the
    pages show, and whether they may see every person's data and the channel's; and, when
    they linked LINE (signing in with LINE Login), their LINE user id and whether LINE said
    they were a friend of the bot (None: not known). See ``relay/line/linked.py``."""

    id: int
    display_name: str
    is_admin: bool
    line_user_id: str | None = None
    line_friend: bool | None = None


class Accounts(Protocol):
    """What the relay asks of the accounts that sign people in."""

    def current_person(self) -> Person | None:
        """The person signed in to this request, or None."""

    def is_admin(self, person_id: int) -> bool:
        """Whether the person with this id is (still) an admin; False for an unknown id."""

    def display_names(self, person_ids: Iterable[int]) -> dict[int, str]:
        """The names of the people with these ids (unknown ids are left out): an admin's
        inbox says whose chat each is."""

    def sign_in_url(self, next_url: str) -> str:
        """Where to send a visitor to sign in, coming back to ``next_url`` afterwards."""

    def language_url(self) -> str:
        """Where the footer's language switcher posts (the language is the person's setting,
        or a cookie for a visitor)."""


def init_app(app: Flask, accounts_port: Accounts) -> None:
    app.extensions[_EXTENSION] = accounts_port


def accounts() -> Accounts:
    """The running app's accounts port."""
    return current_app.extensions[_EXTENSION]


def sign_in_url_here() -> str:
    """Where to sign in and come back to this very page (its path and query)."""
    here = request.full_path if request.query_string else request.path
    return accounts().sign_in_url(here)
