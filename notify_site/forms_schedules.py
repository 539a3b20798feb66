"""The forms of scheduled sends: a recurring schedule (what the send form asks, less the file,
plus when it repeats) and a dated batch's upload. WTForms checks types and presence; the
content rules are notify_content's (:meth:`SendForm.checked_content`), the rest the schedules
service's, and the views put their reasons beside these fields.
"""

from __future__ import annotations

from datetime import time

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, NumberRange, Optional

from notify_site.forms import REQUIRED, at_most, plain_text
from notify_site.forms_send import SendForm
from notify_site.services.schedules.manage import NAME_MAX_CHARS
from notify_site.web.forms import BaseForm

KIND_CHOICES = [
    SelectChoice("daily", _l("Every day")),
    SelectChoice("weekly", _l("Every week, on the days chosen")),
    SelectChoice("monthly", _l("Every month, on a day")),
    SelectChoice("yearly", _l("Every year, on a date")),
]
#: Monday first, as Python's weekday() and the RRULE codes.
WEEKDAY_NAMES = [_l("Mon"), _l("Tue"), _l("Wed"), _l("Thu"), _l("Fri"), _l("Sat"), _l("Sun")]
MONTH_NAMES = [
    _l("January"),
    _l("February"),
    _l("March"),
    _l("April"),
    _l("May"),
    _l("June"),
    _l("July"),
    _l("August"),
    _l("September"),
    _l("October"),
    _l("November"),
    _l("December"),
]
WEEKDAY_CHOICES = [SelectChoice(day, name) for day, name in enumerate(WEEKDAY_NAMES)]
MONTH_CHOICES = [SelectChoice(month, name) for month, name in enumerate(MONTH_NAMES, start=1)]


class ScheduleForm(SendForm):
    """A recurring schedule: the send form's content (images by URL only), and when."""

    image_file = None  # a schedule sends images by URL
    send_at = None
    name = StringField(
        _l("Name"),
        description=_l("Only you see it, e.g. “Morning standup”."),
        validators=[DataRequired(REQUIRED), at_most(NAME_MAX_CHARS), plain_text],
        filters=[lambda value: value.strip() if value else value],
    )
    kind = SelectField(_l("Repeats"), choices=KIND_CHOICES, default="daily")
    at = TimeField(_l("At"), default=time(9, 0), validators=[DataRequired(REQUIRED)])
    weekdays = SelectMultipleField(
        _l("On"), coerce=int, choices=WEEKDAY_CHOICES, validate_choice=True, default=[0]
    )
    month_day = IntegerField(
        _l("Day of the month"),
        default=1,
        validators=[Optional(), NumberRange(1, 31, message=_l("Choose a day from 1 to 31."))],
        description=_l("A month without that day is skipped (the 31st: seven months a year)."),
        render_kw={"min": 1, "max": 31, "inputmode": "numeric"},
    )
    month = SelectField(_l("Month"), coerce=int, choices=MONTH_CHOICES, default=1)
    timezone = StringField(
        _l("Time zone"),
        validators=[DataRequired(REQUIRED), at_most(64)],
        description=_l(
            "An IANA zone such as Asia/Tokyo; yours from Settings unless you change it."
        ),
    )
    starts_on = DateField(_l("Starts"), validators=[Optional()])
    ends_on = DateField(
        _l("Ends"), validators=[Optional()], description=_l("Leave empty to go on for ever.")
    )

    LABELS = {
        **SendForm.LABELS,
        "rrule": _l("Repeats"),
        "ends_at": _l("Ends"),
    }
    #: The service's field names, as this form calls them.
    SERVICE_FIELDS = {"rrule": "kind", "ends_at": "ends_on", "image_file": "image"}


class BatchForm(BaseForm):
    """A dated batch: a CSV file, and the batch's own settings."""

    file = FileField(
        _l("CSV file"),
        description=_l(
            "UTF-8, with a first line naming the columns: date,time,connection,message "
            "(time may be left out)."
        ),
        render_kw={"accept": ".csv,text/csv"},
    )
    default_time = TimeField(
        _l("Time for rows without one"), default=time(9, 0), validators=[Optional()]
    )
    timezone = StringField(
        _l("Time zone"),
        validators=[DataRequired(REQUIRED), at_most(64)],
        description=_l("The dates and times in the file are wall times in this zone."),
    )
    yearly = BooleanField(
        _l("Repeat each row every year"),
        description=_l("Birthdays: each row becomes a yearly schedule on its date."),
    )
