"""The built-in messages: what a post reads like in LINE when no template was given.

Written for a phone screen, in the webhook's language (its words only: labels, summaries and
names stay as the tool sent them), and never longer than a LINE Notify message
(:data:`~notify_site.notify_content.MESSAGE_MAX_CHARS` characters):

* **an alert group** (Alertmanager, Grafana): a first line that says firing or resolved, how
  many, and what (the alert name they share, else the labels they were grouped by); the
  severity they share; one entry per alert (its summary, or its description, or the labels
  that tell it apart; its own link when the alerts' links differ); then the link they share
  and the tool's own address. When the alerts do not all fit, as many as fit are shown and
  "…and N more" counts the rest (with those the tool itself left out, ``truncatedAlerts``);
* **a monitor** (Uptime Kuma): down, up, pending or maintenance, the monitor's name, the
  reason, the address it checks, and when;
* **text**: the body, without control characters, cut with "…" if it is too long.
"""

from __future__ import annotations

from flask_babel import gettext

from notify_site.notify_content import MESSAGE_MAX_CHARS
from notify_site.services.webhooks.formats import (
    FIRING,
    KUMA_DOWN,
    KUMA_MAINTENANCE,
    KUMA_PENDING,
    KUMA_UP,
    SEVERITY_LABELS,
    Alert,
    AlertGroup,
    MonitorEvent,
    Reading,
)
from notify_site.services.webhooks.text import clean, cut

# One summary, description or link: longer ones are cut, so one alert cannot crowd out the rest.
LINE_MAX_CHARS = 300
INDENT = "  "
ALERT_MARKERS = {FIRING: "🔥"}
RESOLVED_MARKER = "✅"
MONITOR_MARKERS = {KUMA_DOWN: "🔴", KUMA_UP: "✅", KUMA_PENDING: "🟡", KUMA_MAINTENANCE: "🔧"}


class NoBuiltInMessageError(LookupError):
    """The generic format has no built-in message: it needs a template."""


def built_in_message(reading: Reading) -> str:
    """The built-in message for what a format read (see the module)."""
    event = reading.event
    if isinstance(event, AlertGroup):
        return alert_group_message(event)
    if isinstance(event, MonitorEvent):
        return monitor_message(event)
    if isinstance(event, str):
        return cut(clean(event), MESSAGE_MAX_CHARS)
    raise NoBuiltInMessageError


def _line(text: str) -> str:
    return cut(clean(text).replace("\n", " "), LINE_MAX_CHARS)


def _labels_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{name}={value}" for name, value in labels.items())


def alert_status_word(status: str) -> str:
    return gettext("FIRING") if status == FIRING else gettext("RESOLVED")


def _marker(status: str) -> str:
    return ALERT_MARKERS.get(status, RESOLVED_MARKER)


# ---------------------------------------------------------------------------- alert groups


def alert_group_message(group: AlertGroup) -> str:
    alerts = group.alerts
    firing = sum(1 for alert in alerts if alert.status == FIRING)
    word = alert_status_word(group.status)
    status = f"[{word}:{firing}]" if group.status == FIRING else f"[{word}]"
    header = [f"{_marker(group.status)} {status} {_line(_title(group))}".rstrip()]
    severity = _shared(alerts, lambda alert: _severity(alert)) or _severity_of(group.common_labels)
    if severity:
        header.append(gettext("Severity: %(severity)s", severity=_line(severity)))

    links = {alert.generator_url for alert in alerts}
    shared_link = links.pop() if len(links) == 1 else ""
    mixed = len({alert.status for alert in alerts}) > 1
    entries = [_alert_entry(alert, group, mixed, with_link=not shared_link) for alert in alerts]
    footer = [_line(link) for link in dict.fromkeys([shared_link, group.external_url]) if link]
    return fit(header, entries, footer, left_out=group.truncated)


def _title(group: AlertGroup) -> str:
    name = _shared(group.alerts, lambda alert: alert.name) or group.common_labels.get("alertname")
    if name:
        return name
    for labels in (group.group_labels, group.common_labels):
        shown = {k: v for k, v in labels.items() if k not in SEVERITY_LABELS}
        if shown:
            return _labels_text(shown)
    return group.receiver


def _shared(alerts: list[Alert], value) -> str:
    """What every alert has in common (``value`` of each), or "" when they differ."""
    values = {value(alert) for alert in alerts}
    return values.pop() if len(values) == 1 else ""


def _severity_of(labels: dict[str, str]) -> str:
    return next((labels[name] for name in SEVERITY_LABELS if labels.get(name)), "")


def _severity(alert: Alert) -> str:
    return _severity_of(alert.labels)


def _alert_entry(alert: Alert, group: AlertGroup, mixed: bool, *, with_link: bool) -> str:
    summary = alert.annotations.get("summary", "")
    description = alert.annotations.get("description", "")
    names_differ = len({a.name for a in group.alerts}) > 1
    severities_differ = len({_severity(a) for a in group.alerts}) > 1
    first = ""
    if mixed:
        first += f"{_marker(alert.status)} "
    if severities_differ and _severity(alert):
        first += f"({_severity(alert)}) "
    if names_differ and alert.name:
        first += f"{alert.name}: "
    headline = summary or description
    if not headline:
        # Nothing written for people: the labels that tell this alert from the others.
        distinct = {
            name: value
            for name, value in alert.labels.items()
            if name != "alertname"
            and name not in SEVERITY_LABELS
            and group.common_labels.get(name) != value
        }
        headline = _labels_text(distinct) or alert.name
        if first.endswith(": ") and headline == alert.name:
            first = first[:-2] + " "
    lines = [_line(f"• {first}{headline}".rstrip())]
    if summary and description and description != summary:
        lines.append(INDENT + _line(description))
    if with_link and alert.generator_url:
        lines.append(INDENT + _line(alert.generator_url))
    return "\n".join(lines)


def more_line(count: int) -> str:
    return gettext("…and %(count)s more", count=count)


def fit(header: list[str], entries: list[str], footer: list[str], *, left_out: int = 0) -> str:
    """The header, as many entries as fit with "…and N more" for the rest, and the footer,
    in at most :data:`MESSAGE_MAX_CHARS` characters (cut with "…" if even no entry fits)."""

    def compose(shown: int) -> str:
        hidden = len(entries) - shown + left_out
        body = entries[:shown] + ([more_line(hidden)] if hidden else [])
        parts = ["\n".join(header), "\n".join(body), "\n".join(footer)]
        return "\n\n".join(part for part in parts if part)

    if len(whole := compose(len(entries))) <= MESSAGE_MAX_CHARS:
        return whole
    # The most entries that fit: fewer entries are always shorter, so a binary search.
    low, high = 0, len(entries) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if len(compose(middle)) <= MESSAGE_MAX_CHARS:
            low = middle
        else:
            high = middle - 1
    return cut(compose(low), MESSAGE_MAX_CHARS)


# ---------------------------------------------------------------------------- monitors


def monitor_status_word(status: int) -> str:
    return {
        KUMA_DOWN: gettext("DOWN"),
        KUMA_UP: gettext("UP"),
        KUMA_PENDING: gettext("PENDING"),
        KUMA_MAINTENANCE: gettext("MAINTENANCE"),
    }[status]


def monitor_message(event: MonitorEvent) -> str:
    if event.status is None:  # a test from Uptime Kuma's settings: its message is all there is
        return cut(clean(event.msg), MESSAGE_MAX_CHARS)
    marker = MONITOR_MARKERS[event.status]
    lines = [f"{marker} {monitor_status_word(event.status)}: {_line(event.monitor_name)}"]
    detail = _line(event.heartbeat_msg)
    if event.ping is not None and event.status == KUMA_UP:
        detail = f"{detail} · {round(event.ping)} ms" if detail else f"{round(event.ping)} ms"
    if detail:
        lines.append(detail)
    if event.monitor_address:
        lines.append(_line(event.monitor_address))
    if event.time:
        when = f"{event.time} ({event.timezone})" if event.timezone else event.time
        lines.append(_line(when))
    return cut("\n".join(lines), MESSAGE_MAX_CHARS)
