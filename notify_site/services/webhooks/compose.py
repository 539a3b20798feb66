"""The message a post becomes: the person's template when there is one, else the built-in
message, in the webhook's language.

A template is checked when it is saved (:func:`check_template`: it must render the format's
sample to some text), so it cannot fail there; it can still fail on a post unlike the sample
(a division by zero on a value the sample did not have, too much work on a huge payload). A
post is never lost for that: it is sent with the built-in message instead (for the generic
format, which has none, the payload's fields one per line), and its history entry says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import force_locale, gettext

from notify_site import stored_text
from notify_site.notify_content import MESSAGE_MAX_CHARS
from notify_site.services.webhooks import formats, samples, templates
from notify_site.services.webhooks.messages import NoBuiltInMessageError, built_in_message
from notify_site.services.webhooks.text import clean, cut
from notify_site.stored_text import N_, StoredText, site_text

# Notes for a post's history (notify_site/stored_text.py): its template was set aside.
stored_text.register(
    {
        "template_failed": N_(
            "Your template failed on this post (%(error)s); the built-in message was sent."
        ),
        "template_empty": N_(
            "Your template wrote nothing for this post; the built-in message was sent."
        ),
    }
)


@dataclass(frozen=True)
class Message:
    """The text to send, and a note for the history when the template was set aside."""

    text: str
    note: StoredText | None = None


def compose(
    format_name: str, template: str | None, reading: formats.Reading, locale: str
) -> Message:
    """The message for ``reading`` (see the module); ``text`` is never empty."""
    note = None
    if template is not None:
        with force_locale("en"):
            try:
                text = clean(templates.render(template, reading.context).text)
            except templates.TemplateError as error:
                text, note = "", site_text("template_failed", error=str(error))
            else:
                note = None if text else site_text("template_empty")
        if text:
            return Message(text)
    with force_locale(locale):
        return Message(_built_in_or_fields(format_name, reading), note)


def _built_in_or_fields(format_name: str, reading: formats.Reading) -> str:
    try:
        return built_in_message(reading)
    except NoBuiltInMessageError:
        pass
    try:
        rendered = templates.render(samples.STARTER_TEMPLATES[format_name], reading.context)
        text = clean(rendered.text)
    except templates.TemplateError:  # a payload too big to list: its JSON, cut
        text = ""
    return text or cut(clean(formats.canonical(reading.context["payload"])), MESSAGE_MAX_CHARS)


def check_template(format_name: str, template: str, locale: str) -> str:
    """What ``template`` writes for the format's sample; :class:`templates.TemplateError` if
    it fails or writes nothing. Run before a template is saved."""
    reading = formats.read(format_name, samples.sample_payload(format_name))
    with force_locale(locale):
        text = clean(templates.render(template, reading.context).text)
        if not text:
            raise templates.TemplateError(gettext("The template writes nothing for the sample."))
    return text


def preview(format_name: str, template: str | None, locale: str) -> str:
    """The message the format's sample becomes with ``template`` (None: the built-in one).

    Raises :class:`templates.TemplateError` for a template that fails on the sample.
    """
    if template is not None:
        return check_template(format_name, template, locale)
    reading = formats.read(format_name, samples.sample_payload(format_name))
    return compose(format_name, None, reading, locale).text
