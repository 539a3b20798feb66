"""Secrets that travel in a URL's path, kept out of every log line.

An incoming webhook's URL carries its secret in the path, ``/hooks/<id>/<secret>``, because
many tools can only be given a URL. A path is what access logs write: werkzeug's server
(``make run``, the tests' live servers) logs each request line on the ``werkzeug`` logger,
and gunicorn's access log writes the path (``%(U)s``, gunicorn.conf.py). :class:`RedactingFilter`
rewrites any such path in a record to ``/hooks/<id>/[secret]`` before a handler sees it;
``create_app`` puts it on the ``werkzeug`` logger and gunicorn.conf.py on gunicorn's loggers.
The site's own log lines name paths through :func:`redact` too.

The secret may also be sent as ``Authorization: Bearer``, and the README recommends that
wherever the tool can set a header: no log writes headers.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[secret]"
# /hooks/<id>/<secret>: anything after the id up to the next separator is the secret.
_HOOK_SECRET = re.compile(r"(/hooks/[^/\s?#\"']+/)[^/\s?#\"']+")


# LINE Login's callback carries a single-use code and the state in its query string.
_LINE_CALLBACK_QUERY = re.compile(r"(/login/line/callback\?)[^\s#\"']+")


def redact(text: str) -> str:
    """``text`` with the secret of every webhook path in it replaced by ``[secret]`` (and
    the query of LINE Login's callback, its code and state)."""
    text = _LINE_CALLBACK_QUERY.sub(r"\g<1>" + REDACTED, text)
    return _HOOK_SECRET.sub(r"\g<1>" + REDACTED, text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts webhook secrets from a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report, not ours
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


def install(*names: str) -> None:
    """Put a :class:`RedactingFilter` on each named logger (once)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
            logger.addFilter(RedactingFilter())
