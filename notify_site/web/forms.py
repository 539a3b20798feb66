"""The base of every form of both houses (Flask-WTF: each carries a CSRF token).

Labels and messages are lazy strings: the classes are built at import, and each request
reads them in its own language. :class:`BaseForm` sends WTForms' built-in messages (a field
that is not a number, an expired CSRF token...) through the app's catalogue too.
"""

from __future__ import annotations

from flask_babel import gettext, ngettext
from flask_wtf import FlaskForm


def N_(text: str) -> str:  # noqa: N802 - the conventional name of gettext's no-op marker
    """Mark a string for extraction only: WTForms translates it when it shows it."""
    return text


# WTForms' own messages the forms can show; listed so that extraction puts them in the
# catalogue (WTForms asks for them by these exact English texts).
WTFORMS_MESSAGES = (
    N_("This field is required."),
    N_("Not a valid integer value."),
    N_("Not a valid choice."),
    N_("Invalid Choice: could not coerce."),
    N_("Not a valid datetime value."),
    N_("Not a valid date value."),
    N_("Not a valid time value."),
    N_("The CSRF token is missing."),
    N_("The CSRF token is invalid."),
    N_("The CSRF token has expired."),
    N_("The CSRF tokens do not match."),
)


class _Translations:
    def gettext(self, string: str) -> str:
        return gettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return ngettext(singular, plural, n)


class BaseForm(FlaskForm):
    """A Flask-WTF form whose WTForms messages come from the app's catalogue."""

    class Meta:
        def get_translations(self, form):
            return _Translations()
