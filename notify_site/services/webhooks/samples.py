"""Each format's sample post and starter template.

The samples (``samples/<format>.json``, ``samples/text.txt``) are what the webhook page
previews a template against, what a template must render at save, and what *Send test*
posts. They have the shape each tool sends (see tests/fixtures/webhooks/README.md for the
tools' own examples) with values of our own. A starter template is what the page offers to
begin a template of one's own from.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from notify_site.models import WebhookFormat

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
_FILES = {
    WebhookFormat.ALERTMANAGER: "alertmanager.json",
    WebhookFormat.GRAFANA: "grafana.json",
    WebhookFormat.UPTIME_KUMA: "uptime-kuma.json",
    WebhookFormat.GENERIC: "generic.json",
    WebhookFormat.TEXT: "text.txt",
}

_ALERT_GROUP_STARTER = """\
{{ "🔥" if status == "firing" else "✅" }} {{ status|upper }}: {{ commonLabels.alertname }}
{% for alert in alerts %}
- {{ alert.labels.instance }}: {{ alert.annotations.summary }}
{% endfor %}
{{ externalURL }}
"""

STARTER_TEMPLATES = {
    WebhookFormat.ALERTMANAGER: _ALERT_GROUP_STARTER,
    WebhookFormat.GRAFANA: _ALERT_GROUP_STARTER,
    WebhookFormat.UPTIME_KUMA: """\
{{ msg }}
{% if monitor %}{{ monitor.url }}{% endif %}
""",
    # The generic format has no built-in message: this is its template until one is written.
    WebhookFormat.GENERIC: """\
{% if payload is mapping %}
{% for key, value in payload.items() %}
{{ key }}: {{ value }}
{% endfor %}
{% else %}
{{ payload }}
{% endif %}
""",
    WebhookFormat.TEXT: "{{ text }}\n",
}


@functools.cache
def sample_body(format_name: str) -> bytes:
    """The sample post of ``format_name``, as a tool would send it."""
    return (SAMPLES_DIR / _FILES[format_name]).read_bytes()


def sample_payload(format_name: str) -> Any:
    """The sample post, read: JSON, or the text itself for the text format."""
    body = sample_body(format_name).decode("utf-8")
    return body if format_name == WebhookFormat.TEXT else json.loads(body)


def sample_text(format_name: str) -> str:
    """The sample post as the page shows it (JSON indented)."""
    payload = sample_payload(format_name)
    if isinstance(payload, str):
        return payload
    return json.dumps(payload, indent=2, ensure_ascii=False)
