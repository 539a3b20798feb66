"""Languages: which locale and time zone a request is served in.

English is the source language; ``ja`` and ``zh_Hant_TW`` (and ``th`` when its catalogue
exists) are translations under ``notify_site/translations``. The locale comes from the
signed-in user's setting, else the browser's ``Accept-Language``, else English.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from flask_babel import Babel
from flask_login import current_user

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"

# Code -> the language's own name (what the switcher shows).
LANGUAGES: dict[str, str] = {
    "en": "English",
    "ja": "日本語",
    "zh_Hant_TW": "繁體中文",
}

# A user without a time zone of their own gets their language's usual one.
DEFAULT_TIMEZONES: dict[str, str] = {"ja": "Asia/Tokyo", "zh_Hant_TW": "Asia/Taipei"}


def select_locale() -> str:
    user_locale = getattr(current_user, "locale", None)
    if user_locale in LANGUAGES:
        return user_locale
    # Browsers send zh-TW / zh-Hant; map both onto the catalogue's name.
    offered = {"en": "en", "ja": "ja", "zh-TW": "zh_Hant_TW", "zh-Hant": "zh_Hant_TW"}
    match = request.accept_languages.best_match(offered) if request else None
    return offered.get(match or "", "en")


def select_timezone() -> str:
    user_zone = getattr(current_user, "timezone", None)
    if user_zone:
        return user_zone
    return DEFAULT_TIMEZONES.get(select_locale(), "UTC")


def init_app(app: Flask, babel: Babel) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
