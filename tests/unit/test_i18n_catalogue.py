"""Nothing a person reads can skip translation (issue 8).

Three nets, each of which fails on a new untranslated string:

* every string marked in the code and the templates (extracted with Babel exactly as
  ``make translations`` extracts it) has a non-empty, non-fuzzy translation with the same
  placeholders in each catalogue, and the committed ``.mo`` files match their ``.po`` files;
* no template has bare text outside a translation call: text between tags and the attributes
  people read (title, placeholder, aria-label, alt, a button's value, data-confirm);
* no view, form or API module passes a plain string literal where people read it (flash,
  abort, the API's errors, form labels and messages).
"""

from __future__ import annotations

import ast
import re
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.checkers import python_format
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from notify_site.i18n import LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "notify_site" / "translations"
# Every language the site offers but English, the source (so a new language is checked too).
LOCALES = [code for code in LANGUAGES if code != "en"]
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "lazy_gettext": None,
    "_l": None,
    "N_": None,
    "pgettext": ((1, "c"), 2),
}
TEMPLATE_DIRS = [
    ROOT / "templates",
    ROOT / "notify_site" / "relay" / "templates",
    ROOT / "notify_site" / "web" / "templates",
]


def extracted() -> Catalog:
    """The messages of the code and the templates, as babel.cfg describes them."""
    catalog = Catalog()
    method_map = [
        ("notify_site/**.py", "python"),
        ("templates/**.html", "jinja2"),
        ("notify_site/relay/templates/**.html", "jinja2"),
        ("notify_site/web/templates/**.html", "jinja2"),
    ]
    options = {pattern: {"trimmed": "true"} for pattern, method in method_map if method == "jinja2"}
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options, keywords=KEYWORDS
    ):
        if isinstance(message, list | tuple):
            message = tuple(message)
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


@pytest.fixture(scope="module")
def source_messages() -> Catalog:
    return extracted()


def load_po(locale: str) -> Catalog:
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale=locale)


def test_extraction_finds_the_sites_strings(source_messages):
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in source_messages}
    # A few from each kind of source, so a broken extraction cannot pass as "nothing to do".
    assert {"Sign in", "Sandbox inbox", "Wrong username or password.", "window reset"} <= ids
    assert "The API key is wrong or was revoked." in ids
    assert len(ids) > 300


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated(source_messages, locale):
    catalogue = load_po(locale)
    problems = []
    for message in source_messages:
        if not message.id:
            continue
        translated = catalogue.get(message.id, context=message.context)
        where = ", ".join(f"{name}:{line}" for name, line in message.locations[:2])
        if translated is None:
            problems.append(f"missing: {message.id!r} ({where})")
            continue
        strings = translated.string
        if not isinstance(strings, tuple):
            strings = (strings,)
        if not all(strings):
            problems.append(f"empty: {message.id!r} ({where})")
        elif translated.fuzzy:
            problems.append(f"fuzzy: {message.id!r} ({where})")
    assert not problems, (
        f"{len(problems)} strings lack a {locale} translation; run `make translations`, "
        "translate them in the .po file, and run it again:\n" + "\n".join(problems)
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_their_placeholders(locale):
    catalogue = load_po(locale)
    problems = []
    for message in catalogue:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        if not any("%(" in text for text in ids):
            continue
        message.flags.add("python-format")
        try:
            python_format(catalogue, message)
        except Exception as error:  # babel's TranslationError
            problems.append(f"{message.id!r}: {error}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalogue_matches_its_source(locale):
    """The committed .mo is what `make translations` compiles from the .po."""
    source = load_po(locale)
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo", "rb") as handle:
        compiled = read_mo(BytesIO(handle.read()))

    def key(value):
        return tuple(value) if isinstance(value, list | tuple) else value

    want = {key(m.id): key(m.string) for m in source if m.id and m.string and not m.fuzzy}
    have = {key(m.id): key(m.string) for m in compiled if m.id}
    assert have == want, "run `make translations` to compile the catalogues"


# --------------------------------------------------------------- bare text in templates

# Jinja's own syntax is taken out before the HTML is read: output becomes a marker, tags and
# comments nothing. {% trans %} blocks are translated whole, so they go first.
TRANS_BLOCK = re.compile(r"{%-?\s*trans\b.*?{%-?\s*endtrans\s*-?%}", re.S)
JINJA_OUTPUT = re.compile(r"{{.*?}}", re.S)
JINJA_TAGS = re.compile(r"{%.*?%}|{#.*?#}", re.S)
MARK = "\x00"
# People read these attributes; the others (class, href, data-field...) are for machines.
READ_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "data-confirm", "label"}
# Text that needs no translation: the brand, LINE's name, symbols and numbers.
ALLOWED_WORDS = {"notify", "site", "notify_site", "LINE", "UTC", "JSON", "API", "e", "g"}


class TextFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0  # inside <pre>, <code>, <script>, <style>, <svg>: code, not prose

    def handle_starttag(self, tag, attrs):
        if tag in {"pre", "code", "script", "style", "svg"}:
            self._skip += 1
        for name, value in attrs:
            if value and (name in READ_ATTRIBUTES or (tag == "input" and name == "value")):
                if tag == "input" and name == "value" and dict(attrs).get("type") == "hidden":
                    continue
                self.found.append(value)

    def handle_endtag(self, tag):
        if tag in {"pre", "code", "script", "style", "svg"} and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.found.append(data)


def bare_words(text: str) -> list[str]:
    """Words of two or more letters outside Jinja, minus the allowed ones."""
    words = re.findall(r"[^\W\d_]{2,}", text.replace(MARK, " "))
    return [word for word in words if word not in ALLOWED_WORDS]


def templates() -> list[Path]:
    return sorted(path for folder in TEMPLATE_DIRS for path in folder.rglob("*.html"))


def bare_text(source: str) -> list[str]:
    source = TRANS_BLOCK.sub(MARK, source)
    source = JINJA_TAGS.sub("", source)
    source = JINJA_OUTPUT.sub(MARK, source)
    finder = TextFinder()
    finder.feed(source)
    finder.close()
    return [" ".join(text.split()) for text in finder.found if bare_words(text)]


def test_the_bare_text_check_catches_bare_text():
    assert bare_text('<p>Hello <a href="/x">{{ _("there") }}</a></p>') == ["Hello"]
    assert bare_text('<button title="Close it">{{ _("x") }}</button>') == ["Close it"]
    assert bare_text("<p>{% trans %}Hello {{ name }}{% endtrans %} · 42 — notify_site</p>") == []
    assert bare_text('<pre><code>curl -X POST</code></pre><input type="hidden" value="ok">') == []


@pytest.mark.parametrize("path", templates(), ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_have_no_bare_text(path):
    found = bare_text(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)} has text outside _() / {{% trans %}}: {found}"


# ------------------------------------------------------------- bare strings in Python

PYTHON_SOURCES = [
    *sorted((ROOT / "notify_site" / "views").glob("*.py")),
    *sorted((ROOT / "notify_site" / "api").glob("*.py")),
    ROOT / "notify_site" / "forms.py",
    ROOT / "notify_site" / "forms_send.py",
    ROOT / "notify_site" / "ratelimit.py",
    ROOT / "notify_site" / "relay" / "forms.py",
    ROOT / "notify_site" / "relay" / "oauth.py",
    *sorted((ROOT / "notify_site" / "relay" / "views").glob("*.py")),
    *sorted((ROOT / "notify_site" / "web").glob("*.py")),
]
# Calls whose string arguments people read, and which of their arguments those are.
READ_CALLS = {
    "flash": (0,),
    "abort": (1,),
    "ApiError": (2,),
    "unauthorized": (1,),
    "_json_error": (2,),
    "error_response": (2,),
    "ValidationError": (0,),
    # The relay's pages: an error page's title, message and hint; a consent-form refusal.
    "error_page": (1, 2, 3),
    "AuthorizeRequestError": (0,),
    "ChatNotAvailableError": (0,),
}
FIELD_CLASSES = {
    "StringField",
    "PasswordField",
    "SelectField",
    "SelectMultipleField",
    "TextAreaField",
    "IntegerField",
    "URLField",
    "FileField",
    "BooleanField",
    "RadioField",
    "SubmitField",
}
READ_KEYWORDS = {"message", "description", "label", "invalid_value_message", "hint"}


def _is_literal_text(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return True
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and bool(re.search(r"[^\W\d_]{2,}", node.value))
    )


def literal_strings(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        positions = READ_CALLS.get(name, ())
        if name in FIELD_CLASSES:
            positions = (0,)
        for index in positions:
            if index < len(node.args) and _is_literal_text(node.args[index]):
                found.append((node.lineno, f"{name}(…{ast.unparse(node.args[index])[:60]})"))
        if name in READ_CALLS or name in FIELD_CLASSES or name in {"InputRequired", "Length"}:
            for keyword in node.keywords:
                if keyword.arg in READ_KEYWORDS and _is_literal_text(keyword.value):
                    found.append((node.lineno, f"{name}({keyword.arg}=…)"))
    return found


def test_the_python_check_catches_a_bare_flash():
    assert literal_strings('flash(f"Queued {n}.", "success")') == [(1, "flash(…f'Queued {n}.')")]
    assert literal_strings('flash(_("Queued."), "success")') == []
    assert literal_strings('x = StringField("Name")') == [(1, "StringField(…'Name')")]
    assert literal_strings('abort(404)\nabort(400, gettext("Bad."))') == []


@pytest.mark.parametrize("path", PYTHON_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_messages_are_marked(path):
    found = literal_strings(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: unmarked text people read: {found}"
