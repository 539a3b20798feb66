"""The send form (SPEC 4.3): WTForms checks types and presence; the content rules are
:mod:`notify_site.notify_content`'s (the relay's too), and :meth:`SendForm.checked_content`
puts their problems beside these fields.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import BooleanField, DateTimeLocalField, IntegerField, TextAreaField, URLField
from wtforms.validators import Optional

from notify_site.forms import chats_field
from notify_site.notify_content import (
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDE,
    MESSAGE_MAX_CHARS,
    Content,
    ContentError,
    ImageFile,
    check_content,
)
from notify_site.services.notifications import PAIR_OF, describe_problem
from notify_site.web.forms import BaseForm


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _browser_newlines(value: str | None) -> str | None:
    # Browsers submit a textarea's line breaks as CRLF but count (and show) them as one
    # character; LINE shows one line break too. Keep one, so the live counter and the server
    # agree on the length.
    return value.replace("\r\n", "\n") if value else value


class SendForm(BaseForm):
    connections = chats_field()
    message = TextAreaField(
        _l("Message"),
        filters=[_browser_newlines],
        render_kw={"rows": 6, "data-max-chars": MESSAGE_MAX_CHARS},
    )
    sticker_package_id = IntegerField(
        _l("Package id"),
        validators=[Optional()],
        render_kw={"min": 1, "inputmode": "numeric", "placeholder": _l("e.g. %(id)s", id=446)},
    )
    sticker_id = IntegerField(
        _l("Sticker id"),
        validators=[Optional()],
        render_kw={"min": 1, "inputmode": "numeric", "placeholder": _l("e.g. %(id)s", id=1988)},
    )
    image_thumbnail_url = URLField(
        _l("Thumbnail URL"),
        filters=[_blank_to_none],
        render_kw={"placeholder": "https://…/thumbnail.jpg"},
    )
    image_fullsize_url = URLField(
        _l("Full-size URL"),
        filters=[_blank_to_none],
        render_kw={"placeholder": "https://…/photo.jpg"},
    )
    image_file = FileField(
        _l("Or upload a file"),
        description=_l(
            "PNG or JPEG, at most %(size)s MiB and %(side)s×%(side)s pixels. "
            "A file takes the place of the addresses.",
            size=IMAGE_MAX_BYTES // (1024 * 1024),
            side=IMAGE_MAX_SIDE,
        ),
        render_kw={"accept": "image/png,image/jpeg"},
    )
    notification_disabled = BooleanField(_l("Send silently"))
    # A wall time in the person's zone (Settings); empty: now.
    send_at = DateTimeLocalField(
        _l("Send later"),
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        validators=[Optional()],
    )

    # Errors that belong to a pair of inputs rather than one ("sticker", "image").
    group_errors: dict[str, list[str]]

    # The label an error starts with, where it is not the field's own (the pairs have none).
    LABELS = {
        "connections": _l("Chats"),
        "message": _l("Message"),
        "sticker": _l("Sticker"),
        "image": _l("Image"),
        "image_file": _l("Image file"),
        "send_at": _l("Send later"),
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.group_errors = {}

    def checked_content(self) -> Content | None:
        """What the person asked to send, checked by notify_content; None, with each problem
        beside its field (a pair's beside the pair), when it cannot be sent."""
        upload = None
        field = self._fields.get("image_file")  # a schedule's form has none
        storage = field.data if field is not None else None
        if storage:
            upload = ImageFile(
                filename=storage.filename or "",
                data=storage.read(),
                declared_type=storage.mimetype or "",
            )
        try:
            return check_content(
                self.message.data or "",
                sticker_package_id=self.sticker_package_id.data,
                sticker_id=self.sticker_id.data,
                image_thumbnail_url=self.image_thumbnail_url.data,
                image_fullsize_url=self.image_fullsize_url.data,
                image_file=upload,
                notification_disabled=bool(self.notification_disabled.data),
            )
        except ContentError as error:
            for name, problem in error.problems.items():
                place = PAIR_OF[name] if problem.code == "pair" else name
                self.add_error(place, describe_problem(name, problem))
            return None

    def add_error(self, name: str, reason: str) -> None:
        """Show a service's ``reason`` beside the field (or pair of fields) called ``name``.

        An error WTForms already put on a field wins: it is the more specific of the two (a
        sticker id that is not a number also makes the pair look half given).
        """
        field = self._fields.get(name)
        label = self.LABELS.get(name) or (field.label.text if field is not None else name)
        text = _sentence(str(label), reason)
        if field is not None:
            if not field.errors:
                field.errors = [text]
            return
        pair = [member for member, group in PAIR_OF.items() if group == name]
        if any(self._fields[member].errors for member in pair):
            return
        self.group_errors.setdefault(name, []).append(text)

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.group_errors)


def _sentence(label: str, reason: str) -> str:
    """Turn a service reason such as "is required" into "Message is required.".

    English reasons are predicates that need the field's name in front; translated reasons
    (the service's gettext) are whole phrases, and each language ends them its own way.
    """
    reason = reason.strip().rstrip(".。")
    if reason.startswith(("is ", "must ")):
        return _("%(label)s %(reason)s.", label=label, reason=reason)
    return _("%(reason)s.", reason=reason[:1].upper() + reason[1:])
