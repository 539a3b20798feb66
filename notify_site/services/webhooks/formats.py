"""What each format reads from a post: pure functions, no database, no Flask request.

:func:`read` takes a webhook's format and the post's body and returns a :class:`Reading`:

* the **event** the built-in message is written from (:mod:`.messages`): an
  :class:`AlertGroup` (Alertmanager, Grafana), a :class:`MonitorEvent` (Uptime Kuma), or the
  text itself (``text``; ``generic`` has no built-in message, only a template);
* the **context** a person's template sees: the payload's own fields as the tool sent them,
  plus ``payload`` (the whole body; ``text`` for the text format);
* the **group** and **state** that repeats are recognised by (:mod:`.receive`): a group is
  an Alertmanager or Grafana ``groupKey``, an Uptime Kuma monitor; its state is the status
  and, for alert groups, each alert's fingerprint and status. A post whose group is in the
  state it was last queued in is a repeat; any change (a new alert in the group, a resolved
  one, down → up → down) is not. The generic and text formats have one group, whose state is
  the body itself.

A body a format cannot read raises :class:`PayloadError`, which names each field that is
missing or wrong (``alerts[0].labels``) and why.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext

from notify_site import stored_text
from notify_site.models import WebhookFormat
from notify_site.services import ServiceError
from notify_site.stored_text import N_, StoredText, site_text

FIRING = "firing"
RESOLVED = "resolved"
ALERT_STATUSES = (FIRING, RESOLVED)
# Uptime Kuma's heartbeat statuses (src/util.ts: DOWN, UP, PENDING, MAINTENANCE).
KUMA_DOWN, KUMA_UP, KUMA_PENDING, KUMA_MAINTENANCE = 0, 1, 2, 3
KUMA_STATUSES = (KUMA_DOWN, KUMA_UP, KUMA_PENDING, KUMA_MAINTENANCE)
# Monitor types whose `url` is the address; Uptime Kuma's other monitors keep "https://" there.
KUMA_URL_TYPES = {"http", "keyword", "json-query", "real-browser", "grpc-keyword"}
# Labels that say how bad, not which one: never used to tell alerts apart.
SEVERITY_LABELS = ("severity",)


# Why a body cannot be read: a code and its English words (the catalogue's msgid). The API
# answers in the request's language; a post's history keeps the code, translated when shown
# (notify_site/stored_text.py).
REASONS = {
    "missing": N_("is missing"),
    "not_an_object": N_("must be an object"),
    "body_not_an_object": N_("must be a JSON object"),
    "not_json": N_("is not valid JSON"),
    "not_utf8": N_("is not UTF-8 text"),
    "json_empty": N_("is empty: send the tool's JSON"),
    "text_empty": N_("is empty: the text format sends the body"),
    "no_message": N_("gives no message that can be sent"),
    "alert_status": N_("must be firing or resolved"),
    "not_a_list": N_("must be a list"),
    "not_a_whole_number": N_("must be a whole number"),
    "not_a_string": N_("must be a string"),
    "kuma_nothing": N_("is missing (give msg, or heartbeat and monitor)"),
    "kuma_status": N_("must be 0, 1, 2 or 3"),
}
stored_text.register(
    {
        **{f"payload_{code}": text for code, text in REASONS.items()},
        "payload_unreadable": N_("%(field)s: %(reason)s"),
        "payload_unreadable_more": N_("%(field)s: %(reason)s (and %(count)s more)"),
    }
)


class PayloadError(ServiceError):
    """The body is not what the format expects: ``problems`` map each field to the code of
    what is wrong (:data:`REASONS`); ``fields`` in English, :meth:`translated` in the
    request's language, :meth:`stored` for a post's history."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        self.fields = {name: REASONS[code] for name, code in self.problems.items()}
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in self.fields.items()))

    def translated(self) -> dict[str, str]:
        return {name: gettext(reason) for name, reason in self.fields.items()}

    def stored(self) -> StoredText:
        (name, code), *rest = self.problems.items()
        reason = site_text(f"payload_{code}")
        if not rest:
            return site_text("payload_unreadable", field=name, reason=reason)
        return site_text("payload_unreadable_more", field=name, reason=reason, count=len(rest))


@dataclass(frozen=True)
class Alert:
    """One alert of an Alertmanager or Grafana notification."""

    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str
    fingerprint: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True)
class AlertGroup:
    """An Alertmanager or Grafana notification: one group of alerts and its status."""

    source: str
    status: str
    alerts: list[Alert]
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    truncated: int
    receiver: str


@dataclass(frozen=True)
class MonitorEvent:
    """An Uptime Kuma notification: a monitor's heartbeat, or a test with only a message."""

    msg: str
    status: int | None = None
    monitor_name: str = ""
    monitor_address: str = ""
    heartbeat_msg: str = ""
    ping: float | None = None
    time: str = ""
    timezone: str = ""


@dataclass(frozen=True)
class Reading:
    """What a format read from one post (see the module)."""

    event: AlertGroup | MonitorEvent | str | None
    context: dict[str, Any]
    group: str
    state: str = field(default="")

    @property
    def group_hash(self) -> str:
        return _sha256(self.group)

    @property
    def state_hash(self) -> str:
        return _sha256(self.state)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def canonical(value: Any) -> str:
    """One JSON text per value: keys sorted, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------- reading bodies


def decode_json(body: bytes) -> Any:
    """The JSON value of ``body``; :class:`PayloadError` on ``body`` when it is not JSON."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise PayloadError({"body": "not_json"}) from None


def decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError({"body": "not_utf8"}) from None


def read(format_name: str, payload: Any) -> Reading:
    """What ``format_name`` reads from ``payload`` (parsed JSON; a str for the text format)."""
    if format_name in (WebhookFormat.ALERTMANAGER, WebhookFormat.GRAFANA):
        return _read_alert_group(format_name, payload)
    readers = {
        WebhookFormat.UPTIME_KUMA: _read_uptime_kuma,
        WebhookFormat.GENERIC: _read_generic,
        WebhookFormat.TEXT: _read_text,
    }
    return readers[format_name](payload)


def _context(payload: Any, **extra: Any) -> dict[str, Any]:
    context = dict(payload) if isinstance(payload, dict) else {}
    context.update(extra)
    context["payload"] = payload
    return context


def _required() -> str:
    return "missing"


def _must_be_object() -> str:
    return "not_an_object"


def _string(value: Any) -> str:
    """A label or annotation value as text (tools send strings; anything else is shown)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return canonical(value)


def _string_map(value: Any, name: str, problems: dict[str, str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems[name] = _must_be_object()
        return {}
    return {str(key): _string(item) for key, item in value.items()}


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise PayloadError({"body": "body_not_an_object"})
    return payload


# ---------------------------------------------------------------------------- Alertmanager, Grafana


def _read_alert_group(format_name: str, payload: Any) -> Reading:
    """Alertmanager's webhook message (version 4) or Grafana's webhook contact point (which
    sends the same shape, plus fields of its own)."""
    body = _object(payload)
    problems: dict[str, str] = {}
    status = body.get("status")
    if status is None:
        problems["status"] = _required()
    elif status not in ALERT_STATUSES:
        problems["status"] = "alert_status"
    raw_alerts = body.get("alerts")
    alerts: list[Alert] = []
    if raw_alerts is None:
        problems["alerts"] = _required()
    elif not isinstance(raw_alerts, list):
        problems["alerts"] = "not_a_list"
    else:
        for index, raw in enumerate(raw_alerts):
            alert = _read_alert(raw, f"alerts[{index}]", status, problems)
            if alert is not None:
                alerts.append(alert)
    group_labels = _string_map(body.get("groupLabels"), "groupLabels", problems)
    common_labels = _string_map(body.get("commonLabels"), "commonLabels", problems)
    common_annotations = _string_map(body.get("commonAnnotations"), "commonAnnotations", problems)
    truncated = body.get("truncatedAlerts") or 0
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        problems["truncatedAlerts"] = "not_a_whole_number"
    if problems:
        raise PayloadError(problems)
    group = AlertGroup(
        source=format_name,
        status=status,
        alerts=alerts,
        group_labels=group_labels,
        common_labels=common_labels,
        common_annotations=common_annotations,
        external_url=_string(body.get("externalURL")),
        truncated=truncated,
        receiver=_string(body.get("receiver")),
    )
    group_key = body.get("groupKey")
    if not isinstance(group_key, str) or not group_key:
        # Without a groupKey (a hand-made post): the receiver and the labels grouped by.
        group_key = canonical({"receiver": group.receiver, "groupLabels": group_labels})
    state = canonical([status, sorted([alert.fingerprint, alert.status] for alert in group.alerts)])
    return Reading(event=group, context=_context(body), group=group_key, state=state)


def _read_alert(raw: Any, name: str, group_status: Any, problems: dict[str, str]) -> Alert | None:
    if not isinstance(raw, dict):
        problems[name] = _must_be_object()
        return None
    if "labels" not in raw:
        problems[f"{name}.labels"] = _required()
    labels = _string_map(raw.get("labels"), f"{name}.labels", problems)
    annotations = _string_map(raw.get("annotations"), f"{name}.annotations", problems)
    status = raw.get("status", group_status)
    if status not in ALERT_STATUSES:
        problems[f"{name}.status"] = "alert_status"
    fingerprint = raw.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        fingerprint = _sha256(canonical(labels))[:16]  # what tells the alert apart: its labels
    return Alert(
        status=status if status in ALERT_STATUSES else FIRING,
        labels=labels,
        annotations=annotations,
        generator_url=_string(raw.get("generatorURL")),
        fingerprint=fingerprint,
    )


# ---------------------------------------------------------------------------- Uptime Kuma


def _read_uptime_kuma(payload: Any) -> Reading:
    """Uptime Kuma's webhook notification: ``{heartbeat, monitor, msg}``. A test sent from
    Uptime Kuma's settings has only ``msg`` (heartbeat and monitor are null)."""
    body = _object(payload)
    problems: dict[str, str] = {}
    msg = body.get("msg")
    if msg is not None and not isinstance(msg, str):
        problems["msg"] = "not_a_string"
    heartbeat = body.get("heartbeat")
    monitor = body.get("monitor")
    if heartbeat is not None and not isinstance(heartbeat, dict):
        problems["heartbeat"] = _must_be_object()
    if monitor is not None and not isinstance(monitor, dict):
        problems["monitor"] = _must_be_object()
    if problems:
        raise PayloadError(problems)
    if heartbeat is None and monitor is None:
        if not msg:
            raise PayloadError({"msg": "kuma_nothing"})
        event = MonitorEvent(msg=msg)
        return Reading(event=event, context=_context(body), group="test", state=msg)

    status = heartbeat.get("status") if heartbeat else None
    if heartbeat is None:
        problems["heartbeat"] = _required()
    elif status is None:
        problems["heartbeat.status"] = _required()
    elif status not in KUMA_STATUSES or isinstance(status, bool):
        problems["heartbeat.status"] = "kuma_status"
    name = monitor.get("name") if monitor else None
    if monitor is None:
        problems["monitor"] = _required()
    elif not isinstance(name, str) or not name:
        problems["monitor.name"] = _required()
    if problems:
        raise PayloadError(problems)
    ping = heartbeat.get("ping")
    event = MonitorEvent(
        msg=msg or "",
        status=status,
        monitor_name=name,
        monitor_address=_monitor_address(monitor),
        heartbeat_msg=_string(heartbeat.get("msg")),
        ping=ping if isinstance(ping, int | float) and not isinstance(ping, bool) else None,
        time=_string(heartbeat.get("localDateTime") or heartbeat.get("time")),
        timezone=_string(heartbeat.get("timezone")) if heartbeat.get("localDateTime") else "UTC",
    )
    monitor_id = monitor.get("id")
    group = canonical(["monitor", monitor_id if monitor_id is not None else name])
    return Reading(event=event, context=_context(body), group=group, state=str(status))


def _monitor_address(monitor: dict[str, Any]) -> str:
    """Where the monitor looks: its URL for web monitors, else its host (and port)."""
    url = _string(monitor.get("url"))
    if monitor.get("type") in KUMA_URL_TYPES and url and url not in ("http://", "https://"):
        return url
    host = _string(monitor.get("hostname"))
    port = monitor.get("port")
    if host and isinstance(port, int) and not isinstance(port, bool) and port > 0:
        return f"{host}:{port}"
    return host


# ---------------------------------------------------------------------------- generic, text


def _read_generic(payload: Any) -> Reading:
    return Reading(event=None, context=_context(payload), group="body", state=canonical(payload))


def _read_text(payload: Any) -> Reading:
    text = payload if isinstance(payload, str) else ""
    if not text.strip():
        raise PayloadError({"body": "text_empty"})
    return Reading(event=text, context={"text": text, "payload": text}, group="body", state=text)
