"""Seams between the two houses: registries on the app that one house adds to and the other
reads, so that neither imports the other.

The site's worker runs jobs it does not know (the relay's LINE pushes); the site's ``setup``
command runs steps it does not know (the relay registering the site as its client); the
app-wide error handlers let another house shape the errors raised on its paths before a
blueprint is known (a 404 at routing); deleting an account lets the relay forget the
person; key rotation re-encrypts columns of both houses (:mod:`notify_site.keyring`). Each
house adds its part when it is initialised; :func:`notify_site.create_app` is the only place
that initialises both.

Every registry is a list in ``app.extensions`` under one of the names below.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Flask

#: Callables ``job(app, stopping) -> int`` the worker runs beside its deliveries (the work
#: done; 0 when idle). ``stopping()`` tells a long job to stop early.
WORKER_JOBS = "notify_site.worker_jobs"

#: Callables ``step(app, echo) -> None`` that ``flask setup`` runs after migrating and
#: writing the secrets, in an app context; ``echo(text)`` tells the operator what was done.
SETUP_STEPS = "notify_site.setup_steps"

#: Callables ``answer(error) -> response | None`` asked first by the app-wide error handlers
#: (``error`` is a Werkzeug ``HTTPException``; an unexpected exception is passed as an
#: ``InternalServerError``). The first that returns a response answers; None passes.
ERROR_ANSWERERS = "notify_site.error_answerers"

#: Callables ``forget(person_id) -> None`` run when an account is deleted, inside the
#: deletion's transaction (they must not commit): the relay deletes the person's chats, tokens
#: and pairings, so that an account given the same id later finds nothing of them.
ACCOUNT_DELETED = "notify_site.account_deleted"

#: :class:`notify_site.keyring.EncryptedColumn` values: every column holding key-ring
#: ciphertexts, which ``flask rotate-keys`` moves to the newest key.
ENCRYPTED_COLUMNS = "notify_site.encrypted_columns"

#: Callables ``warnings() -> list[str]`` the site's ``/admin`` shows at its top, in a request
#: context (translated): the relay's monthly LINE quota at 80 % or 100 % of a budget.
ADMIN_NOTICES = "notify_site.admin_notices"

T = TypeVar("T")


def add(app: Flask, seam: str, item: T) -> T:
    """Add ``item`` to the registry ``seam`` of ``app`` (once, however often it is called)."""
    items = app.extensions.setdefault(seam, [])
    if item not in items:
        items.append(item)
    return item


def items(app: Flask, seam: str) -> tuple[Any, ...]:
    """What the registry ``seam`` of ``app`` holds, in the order it was added."""
    return tuple(app.extensions.get(seam, ()))
