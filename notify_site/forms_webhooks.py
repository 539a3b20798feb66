"""The incoming webhooks' forms (``/webhooks``): making one, and its settings.

The chats are checkboxes of the person's active connections, as on the send form; which of
them may be used is the service's to say (:mod:`notify_site.services.webhooks.manage`).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, NumberRange

from notify_site.forms import REQUIRED, at_most, chats_field, plain_text
from notify_site.i18n import LANGUAGES
from notify_site.models import WebhookFormat
from notify_site.services.webhooks.manage import DEDUPE_MAX_SECONDS, NAME_MAX_CHARS
from notify_site.services.webhooks.templates import TEMPLATE_MAX_CHARS
from notify_site.web.forms import BaseForm

FORMAT_NAMES = {
    WebhookFormat.ALERTMANAGER: _l("Prometheus Alertmanager"),
    WebhookFormat.GRAFANA: _l("Grafana (webhook contact point)"),
    WebhookFormat.UPTIME_KUMA: _l("Uptime Kuma"),
    WebhookFormat.GENERIC: _l("Any JSON, with a template"),
    WebhookFormat.TEXT: _l("Plain text: the body is the message"),
}


def _strip(value: str | None) -> str | None:
    return value.strip() if value else value


def _browser_newlines(value: str | None) -> str | None:
    return value.replace("\r\n", "\n") if value else value


class _WebhookFields(BaseForm):
    name = StringField(
        _l("Name"),
        description=_l("What posts here, e.g. “Grafana”. Only you see it."),
        validators=[DataRequired(REQUIRED), at_most(NAME_MAX_CHARS), plain_text],
        filters=[_strip],
    )
    connections = chats_field()
    locale = SelectField(
        _l("Language of the messages"),
        description=_l("For the words the site writes (FIRING, DOWN…); alerts keep their own."),
        choices=[SelectChoice(code, name) for code, name in LANGUAGES.items()],
    )


class WebhookCreateForm(_WebhookFields):
    format = SelectField(
        _l("What will post to it"),
        choices=[SelectChoice(code, name) for code, name in FORMAT_NAMES.items()],
        default="alertmanager",
    )


class WebhookSettingsForm(_WebhookFields):
    dedupe_minutes = IntegerField(
        _l("Repeats of an alert within (minutes)"),
        description=_l(
            "The same alert group in the same state within this time is sent once. "
            "0 sends every post."
        ),
        validators=[
            InputRequired(message=REQUIRED),
            NumberRange(
                min=0,
                max=DEDUPE_MAX_SECONDS // 60,
                message=_l("From %(min)s to %(max)s."),
            ),
        ],
        render_kw={"min": 0, "max": DEDUPE_MAX_SECONDS // 60, "inputmode": "numeric"},
    )
    template = TextAreaField(
        _l("Your own template (optional)"),
        description=_l(
            "Jinja2, with the fields of what the tool posts (and payload, the whole of it). "
            "Empty: the built-in message."
        ),
        validators=[at_most(TEMPLATE_MAX_CHARS)],
        filters=[_browser_newlines],
        render_kw={"rows": 10, "spellcheck": "false", "autocomplete": "off"},
    )
