"""Services own the business rules and the transactions; views call them and map their errors."""

from flask_babel import gettext

from notify_site.plain_text import text_problem


class ServiceError(Exception):
    """Base of every domain error a service raises; the message is safe to show to the user."""


def plain_text_reason(value: str) -> str | None:
    """Why ``value`` cannot be stored as a label, a name or a setting, for people; or None.

    The rule is :mod:`notify_site.plain_text`'s: no control characters (PostgreSQL cannot
    store NUL at all), valid Unicode. The forms check it; the services check it again for the
    callers that come without a form (the command line).
    """
    problem = text_problem(value)
    if problem is None:
        return None
    if problem.code == "control_character":
        return gettext(
            "Control characters cannot be used here (found %(character)s).",
            character=problem.character,
        )
    return gettext(
        "This is not valid Unicode text (found %(character)s).", character=problem.character
    )
