"""Languages: which locale and time zone a request is served in, and how it shows times and
figures.

English is the source language; ``ja``, ``zh_Hant_TW`` and ``th`` are translations under
``notify_site/translations`` (``make translations`` extracts, updates and compiles them; the
compiled ``.mo`` files are committed, so a fresh clone and ``gunicorn wsgi:app`` need no
build step).

The locale of a page is the signed-in user's setting, else the language chosen with the
footer's switcher (a cookie, so it survives signing in and out), else the browser's
``Accept-Language``, else English. The JSON API v1 has no pages and no session: its human
``message`` follows ``Accept-Language`` alone, so a program gets the same answer whoever is
signed in in a browser. The time zone is the user's setting, else the language's usual zone
(Asia/Tokyo for ``ja``, Asia/Taipei for ``zh_Hant_TW``, Asia/Bangkok for ``th``), else UTC.

Thai dates are Gregorian (2031, not the Buddhist era's 2574): Babel formats only the
Gregorian calendar, and the site's times sit beside ISO times in the API and the logs. The
browser's ``Intl`` would pick the Buddhist calendar for ``th``, so the scripts are handed
``th-u-ca-gregory`` (:data:`INTL_LOCALE`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale
from babel.dates import format_skeleton, get_timezone_name
from flask import Flask, request
from flask_babel import (
    Babel,
    format_datetime,
    format_number,
    format_time,
    get_locale,
    get_timezone,
    to_user_timezone,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup

from notify_site.extensions import db

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"

# Code -> the language's own name (what the switcher shows, in every language alike).
LANGUAGES: dict[str, str] = {
    "en": "English",
    "ja": "日本語",
    "zh_Hant_TW": "繁體中文",
    "th": "ไทย",
}

# The catalogue's code -> the BCP 47 tag for <html lang> and for Intl in the browser.
HTML_LANG: dict[str, str] = {"en": "en", "ja": "ja", "zh_Hant_TW": "zh-Hant-TW", "th": "th"}

# The locale the scripts hand to Intl, where it differs from <html lang>: Intl's Thai counts
# years in the Buddhist era, Babel's (the server's) in the Gregorian one; both say 2031.
INTL_LOCALE: dict[str, str] = {"th": "th-u-ca-gregory"}

# A user without a time zone of their own gets their language's usual one.
DEFAULT_TIMEZONES: dict[str, str] = {
    "ja": "Asia/Tokyo",
    "zh_Hant_TW": "Asia/Taipei",
    "th": "Asia/Bangkok",
}

# The footer switcher's choice, for visitors (and as a fallback for users with no setting).
COOKIE_NAME = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

# Browsers send zh-TW, zh-Hant, zh-HK...; the Traditional-script ones map onto our catalogue.
_ACCEPTED = {
    "en": "en",
    "ja": "ja",
    "zh-TW": "zh_Hant_TW",
    "zh-Hant": "zh_Hant_TW",
    "zh-Hant-TW": "zh_Hant_TW",
    "zh-HK": "zh_Hant_TW",
    "zh-MO": "zh_Hant_TW",
    "th": "th",
    "th-TH": "th",
}


def _is_api_request() -> bool:
    return request.path.startswith("/api/")


def accept_language_locale() -> str:
    """The best of our languages by ``Accept-Language`` alone (English when none fits)."""
    match = request.accept_languages.best_match(_ACCEPTED)
    return _ACCEPTED.get(match or "", "en")


def select_locale() -> str:
    if not request:
        return "en"
    if _is_api_request():
        return accept_language_locale()
    user_locale = getattr(current_user, "locale", None)
    if user_locale in LANGUAGES:
        return user_locale
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie in LANGUAGES:
        return cookie
    return accept_language_locale()


def select_timezone() -> str:
    if request and not _is_api_request():
        user_zone = getattr(current_user, "timezone", None)
        if user_zone and is_valid_timezone(user_zone):
            return user_zone
    return DEFAULT_TIMEZONES.get(select_locale(), "UTC")


def is_valid_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA zone this machine knows (``Asia/Tokyo``, ``UTC``)."""
    if not name or name not in available_timezones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def save_preferences(user: Any, *, locale: str | None, timezone: str | None) -> None:
    """Store a user's language and time zone (None: follow the browser / the language)."""
    user.locale = locale if locale in LANGUAGES else None
    user.timezone = timezone if timezone and is_valid_timezone(timezone) else None
    db.session.commit()


# --------------------------------------------------------------------------- formatting

# English keeps the site's unambiguous ISO-like style; other locales use their own short
# forms (ja 2031/05/06 15:30, zh_Hant_TW 2031/5/6 下午3:30). Thai's short date has a two-digit
# year (6/5/31), so its "minute" style is its medium date and short time: 6 พ.ค. 2031 14:08.
_EN_PATTERNS = {
    "minute": "yyyy-MM-dd HH:mm",
    "second": "yyyy-MM-dd HH:mm:ss",
    "time": "HH:mm:ss",
    "brief": "MM-dd HH:mm",
}


_LOCALE_PATTERNS: dict[str, dict[str, str]] = {"th": {"minute": "d MMM y HH:mm"}}


def _is_utc() -> bool:
    return str(get_timezone()) in {"UTC", "Etc/UTC"}


def _locale_code() -> str:
    locale = get_locale()
    return str(locale) if locale else "en"


# "brief" (dense tables) is month, day and 24-hour time. CLDR has no combined skeleton for
# that and Babel does not join a date skeleton to a time one (format_skeleton("MMdHm") raises
# KeyError in every locale), so the two halves are formatted apart and joined by the locale's
# own date-time pattern: ja 5/6 16:08, zh_Hant_TW 05/06 15:08.
_BRIEF_SKELETONS = ("MMdd", "Hm")


def _brief_text(value: datetime) -> str:
    locale = get_locale() or Locale.parse("en")
    local = to_user_timezone(value)
    try:
        day, clock = (
            format_skeleton(skeleton, local, locale=locale) for skeleton in _BRIEF_SKELETONS
        )
        pattern = str(locale.datetime_formats.get("short") or "{1} {0}")
    except (KeyError, ValueError):
        # A locale whose CLDR data lacks either skeleton: its short date and time, never a 500.
        return format_datetime(value, "short")
    return pattern.replace("{1}", day).replace("{0}", clock)


def time_text(value: datetime, style: str = "minute") -> str:
    """``value`` (an aware UTC time) in the user's zone and locale; `` UTC`` added when the
    zone is UTC (other zones are named once, by :func:`zone_name`, at the top of a page)."""
    code = _locale_code()
    if code == "en":
        text = format_datetime(value, _EN_PATTERNS[style])
    elif style in _LOCALE_PATTERNS.get(code, {}):
        text = format_datetime(value, _LOCALE_PATTERNS[code][style])
    elif style == "time":
        text = format_time(value, "medium")
    elif style == "brief":
        text = _brief_text(value)
    else:
        text = format_datetime(value, "short" if style == "minute" else "medium")
    return f"{text} UTC" if _is_utc() else text


def time_element(value: datetime | None, style: str = "minute", empty: str = "—") -> Markup:
    """A ``<time>`` element: machine-readable UTC in ``datetime``, the full local time with
    its zone in ``title``, and :func:`time_text` as its text; a muted ``empty`` when None."""
    if value is None:
        return Markup('<span class="muted">{}</span>').format(empty)
    title = format_datetime(value, "yyyy-MM-dd HH:mm:ss ZZZZ")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        value.isoformat(), title, time_text(value, style)
    )


def zone_name() -> str:
    """The request's time zone as people call it (``日本時間``, ``UTC``)."""
    if _is_utc():
        return "UTC"
    zone = get_timezone()
    name = get_timezone_name(zone, "long", locale=get_locale())
    return name if "Unknown" not in name else str(zone)


def number(value: int | float | None) -> str:
    """A figure with the locale's grouping (12,345); an em dash when unknown."""
    return "—" if value is None else format_number(value)


def hour_label(value: datetime, pattern: str = "HH:mm") -> str:
    """A chart's hour label in the user's zone: ``15:00`` (24-hour in every locale, so the
    axis stays short)."""
    return format_datetime(value, pattern)


# ------------------------------------------------------------------- strings for scripts

# Text the site's scripts write into pages. They read it, translated, from a JSON block in
# base.html (no inline script: the CSP forbids it). Placeholders are %(name)s, as in Python.
JS_STRINGS: dict[str, Any] = {
    "window_reset": _l("window reset"),
    "resets_in": _l("resets in %(clock)s"),
    "chars_too_many": _l("%(count)s characters too many"),
    "finished_summary": _l("Finished: %(delivered)s delivered."),
    "finished_summary_failed": _l("Finished: %(delivered)s delivered, %(failed)s failed."),
    "delivering_progress": _l(
        "Delivering… %(finished)s of %(total)s finished; this page updates itself."
    ),
    "session_ended_status": _l("Your session ended: sign in again to follow these notifications."),
    "lost_contact_status": _l("Lost contact with the site; trying again…"),
    "copied": _l("Copied."),
    "copy_selected": _l("Selected: press Ctrl-C (or Cmd-C) to copy."),
    "characters_of": _l("%(count)s of 1,000 characters"),
    "preview_unavailable": _l("The preview could not be made; try again in a moment."),
}

# Status words the pages show in pills; the stored values stay English identifiers.
STATUS_WORDS: dict[str, Any] = {
    "active": _l("active"),
    "revoked": _l("revoked"),
    "unreachable": _l("unreachable"),
    "error": _l("error"),
    "queued": _l("queued"),
    "sending": _l("sending"),
    "delivered": _l("delivered"),
    "at_server": _l("pending at the Notify server"),
    "failed": _l("failed"),
    # An incoming webhook (a schedule too), and what became of a post to it.
    "paused": _l("paused"),
    "duplicate": _l("duplicate"),
    "invalid": _l("invalid"),
    "refused": _l("refused"),
    "scheduled": _l("scheduled"),
    "cancelled": _l("cancelled"),
    # A schedule's states (paused: above), and what became of one of its occurrences.
    "finished": _l("finished"),
    "skipped": _l("skipped"),
    "not_sent": _l("not sent"),
    # LINE Notify's targetType, shown as the badge; English keeps Notify's own word.
    "USER": _l("USER"),
    "GROUP": _l("GROUP"),
}


def status_word(value: str | None) -> str:
    """A stored status (``delivered``, ``USER``) in the page's language."""
    if value is None:
        return ""
    word = STATUS_WORDS.get(value)
    return str(word) if word is not None else value


def js_strings() -> dict[str, str]:
    return {key: str(text) for key, text in JS_STRINGS.items()}


def html_lang() -> str:
    return HTML_LANG.get(_locale_code(), "en")


def intl_locale() -> str:
    """The locale the page's scripts give ``Intl`` (``th-u-ca-gregory`` for Thai)."""
    return INTL_LOCALE.get(_locale_code(), html_lang())


def _page_context() -> dict[str, Any]:
    return {
        "html_lang": html_lang(),
        "languages": LANGUAGES,
        "current_locale": _locale_code(),
        "zone_name": zone_name,
        "js_i18n": lambda: {
            "locale": intl_locale(),
            "timeZone": str(get_timezone()),
            "strings": js_strings(),
            "statuses": {key: str(word) for key, word in STATUS_WORDS.items()},
        },
    }


def init_app(app: Flask, babel: Babel) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    # {% trans %} blocks are written across lines; trimmed, their msgids are one line.
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.filters.update(
        when=time_element,
        time_text=time_text,
        number=number,
        status_word=status_word,
    )
    app.context_processor(_page_context)
