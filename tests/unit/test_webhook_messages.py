"""What each format reads from the tools' own example payloads, and the built-in messages they
become, asserted exactly; truncation at 1000 characters; CJK and emoji; missing fields.

The payloads are tests/fixtures/webhooks/ (its README names each one's source).
"""

from __future__ import annotations

import json

import pytest

from notify_site.notify_content import MESSAGE_MAX_CHARS, check_content
from notify_site.services.webhooks import compose, formats
from notify_site.services.webhooks.text import cut, safe_cut_point
from tests.factories import webhook_fixture


@pytest.fixture
def request_context(app):
    with app.test_request_context():
        yield


def message(format_name: str, payload, locale: str = "en") -> str:
    reading = formats.read(format_name, payload)
    return compose.compose(format_name, None, reading, locale).text


def fixture(name: str):
    return json.loads(webhook_fixture(name))


ALERTMANAGER_FIRING = """\
🔥 [FIRING:2] InstanceDown
Severity: page

• Instance web-1.example.com:9100 down
  web-1.example.com:9100 of job node has been down for more than 5 minutes.
• Instance web-2.example.com:9100 down
  web-2.example.com:9100 of job node has been down for more than 5 minutes.

http://prometheus.example.com:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1
http://alertmanager.example.com:9093"""

ALERTMANAGER_RESOLVED = ALERTMANAGER_FIRING.replace("🔥 [FIRING:2]", "✅ [RESOLVED]")

ALERTMANAGER_DISK = """\
🔥 [FIRING:5] DiskRunningFull

• dev=sda1, instance=example1
• dev=sda2, instance=example1
• dev=sda1, instance=example2
• dev=sdb2, instance=example2
• dev=sda1, instance=example3

http://localhost:9093"""

GRAFANA_FIRING = """\
🔥 [FIRING:2] team=blue

• High memory usage: This alert was triggered for zone us-1
  The system has high memory usage
  https://play.grafana.org/alerting/1afz29v7z/edit
• High CPU usage: This alert was triggered for zone eu-1
  The system has high CPU usage
  https://play.grafana.org/alerting/d1rdpdv7k/edit

https://play.grafana.org/"""

KUMA_DOWN = """\
🔴 DOWN: My Website
Request failed with status code 503
https://www.example.com/
2026-03-31 09:15:02 (Asia/Tokyo)"""

KUMA_UP = """\
✅ UP: My Website
200 - OK · 142 ms
https://www.example.com/
2026-03-31 09:21:02 (Asia/Tokyo)"""


@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize(
    ("format_name", "name", "expected"),
    [
        ("alertmanager", "alertmanager-firing.json", ALERTMANAGER_FIRING),
        ("alertmanager", "alertmanager-resolved.json", ALERTMANAGER_RESOLVED),
        ("alertmanager", "alertmanager-disk-running-full.json", ALERTMANAGER_DISK),
        ("grafana", "grafana-firing.json", GRAFANA_FIRING),
        (
            "grafana",
            "grafana-resolved.json",
            GRAFANA_FIRING.replace("🔥 [FIRING:2]", "✅ [RESOLVED]"),
        ),
        ("uptime-kuma", "uptime-kuma-down.json", KUMA_DOWN),
        ("uptime-kuma", "uptime-kuma-up.json", KUMA_UP),
        ("uptime-kuma", "uptime-kuma-test.json", "LINE notify_site Testing"),
    ],
)
def test_each_tools_example_becomes_its_message(format_name, name, expected):
    text = message(format_name, fixture(name))
    assert text == expected
    assert check_content(message=text).message == text  # what the relay would accept


@pytest.mark.usefixtures("request_context")
def test_the_words_of_a_message_follow_the_webhooks_language():
    assert message("alertmanager", fixture("alertmanager-firing.json"), "ja").startswith(
        "🔥 [発生中:2] InstanceDown\n重大度: page\n"
    )
    assert message("uptime-kuma", fixture("uptime-kuma-up.json"), "zh_Hant_TW").startswith(
        "✅ 恢復: My Website\n"
    )
    assert message("alertmanager", fixture("alertmanager-firing.json"), "th").startswith(
        "🔥 [กำลังแจ้งเตือน:2] InstanceDown\nความรุนแรง: page\n"
    )
    assert message("uptime-kuma", fixture("uptime-kuma-down.json"), "th").startswith("🔴 ล่ม: ")


def test_groups_and_states_tell_repeats_from_changes():
    firing = formats.read("alertmanager", fixture("alertmanager-firing.json"))
    resolved = formats.read("alertmanager", fixture("alertmanager-resolved.json"))
    again = formats.read("alertmanager", fixture("alertmanager-firing.json"))
    assert firing.group == '{}:{alertname="InstanceDown"}' == resolved.group
    assert firing.state_hash != resolved.state_hash
    assert firing.state_hash == again.state_hash
    # One more alert in the same firing group is a new state.
    grown = fixture("alertmanager-firing.json")
    grown["alerts"].append({**grown["alerts"][0], "fingerprint": "0123456789abcdef"})
    assert formats.read("alertmanager", grown).state_hash != firing.state_hash

    down = formats.read("uptime-kuma", fixture("uptime-kuma-down.json"))
    up = formats.read("uptime-kuma", fixture("uptime-kuma-up.json"))
    assert down.group == up.group == '["monitor",1]'
    assert (down.state, up.state) == ("0", "1")


@pytest.mark.usefixtures("request_context")
def test_a_long_alert_list_is_cut_at_1000_characters_with_and_n_more():
    payload = fixture("alertmanager-firing.json")
    template = payload["alerts"][0]
    payload["alerts"] = [
        {
            **template,
            "labels": {**template["labels"], "instance": f"web-{n}.example.com:9100"},
            "annotations": {"summary": f"Instance web-{n}.example.com:9100 down"},
            "fingerprint": f"{n:016x}",
        }
        for n in range(1, 61)
    ]
    payload["truncatedAlerts"] = 7  # Alertmanager's max_alerts left these out itself
    text = message("alertmanager", payload)
    assert len(text) <= MESSAGE_MAX_CHARS
    shown = text.count("\n• ")
    assert 10 < shown < 60
    hidden = 60 - shown + 7
    assert f"\n…and {hidden} more\n\nhttp://prometheus.example.com" in text
    assert text.startswith("🔥 [FIRING:60] InstanceDown\nSeverity: page\n\n• Instance web-1.")
    assert text.endswith("http://alertmanager.example.com:9093")
    check_content(message=text)


@pytest.mark.usefixtures("request_context")
def test_one_huge_summary_is_cut_to_its_line_and_never_past_the_limit():
    payload = fixture("alertmanager-firing.json")
    payload["alerts"][0]["annotations"]["summary"] = "x" * 5000
    payload["externalURL"] = "https://am.example.com/" + "y" * 3000
    text = message("alertmanager", payload)
    assert len(text) <= MESSAGE_MAX_CHARS
    first_alert = text.split("\n")[3]
    assert first_alert.startswith("• xxx")
    assert first_alert.endswith("…")
    assert len(first_alert) == 300


@pytest.mark.usefixtures("request_context")
def test_cjk_and_emoji_in_labels_are_kept_whole_and_counted_as_characters():
    payload = fixture("grafana-firing.json")
    alert = payload["alerts"][0]
    alert["labels"]["alertname"] = "ディスク使用率 🔥 高い"
    alert["annotations"]["summary"] = "東京リージョン 👨‍👩‍👧 の伺服器 🇯🇵"
    text = message("grafana", payload)
    assert "• ディスク使用率 🔥 高い: 東京リージョン 👨‍👩‍👧 の伺服器 🇯🇵\n" in text
    check_content(message=text)

    # Cut in the middle of a family emoji or a flag, a message keeps whole characters.
    family = "a" * 10 + "👨‍👩‍👧" + "b"
    for limit in range(10, 16):
        point = safe_cut_point(family, limit)
        assert family[:point] in ("a" * 10, "a" * 10 + "👨‍👩‍👧")
    flags = "🇯🇵🇹🇼🇯🇵"
    assert cut(flags, 4) == "🇯🇵…"
    assert [safe_cut_point(flags, n) % 2 for n in range(6)] == [0] * 6


@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize(
    ("format_name", "payload", "fields"),
    [
        ("alertmanager", {"status": "firing"}, {"alerts": "is missing"}),
        ("alertmanager", {"alerts": []}, {"status": "is missing"}),
        (
            "alertmanager",
            {"status": "burning", "alerts": []},
            {"status": "must be firing or resolved"},
        ),
        (
            "alertmanager",
            {"status": "firing", "alerts": [{"annotations": {}}, "x"]},
            {"alerts[0].labels": "is missing", "alerts[1]": "must be an object"},
        ),
        ("grafana", {"status": "firing", "alerts": "many"}, {"alerts": "must be a list"}),
        ("grafana", ["not", "an", "object"], {"body": "must be a JSON object"}),
        (
            "uptime-kuma",
            {"heartbeat": None, "monitor": None},
            {"msg": "is missing (give msg, or heartbeat and monitor)"},
        ),
        (
            "uptime-kuma",
            {"heartbeat": {"msg": "?"}, "monitor": {"id": 1}, "msg": "x"},
            {"heartbeat.status": "is missing", "monitor.name": "is missing"},
        ),
        (
            "uptime-kuma",
            {"heartbeat": {"status": 9}, "monitor": {"name": "m"}},
            {"heartbeat.status": "must be 0, 1, 2 or 3"},
        ),
        ("text", "   \n ", {"body": "is empty: the text format sends the body"}),
    ],
)
def test_a_payload_the_format_cannot_read_names_what_is_missing(format_name, payload, fields):
    with pytest.raises(formats.PayloadError) as raised:
        formats.read(format_name, payload)
    assert raised.value.fields == fields


@pytest.mark.usefixtures("request_context")
def test_missing_optional_fields_still_make_a_readable_message():
    # No summaries, annotations, links or group key: the labels tell the alerts apart.
    payload = {
        "status": "firing",
        "alerts": [
            {"labels": {"alertname": "Disk", "host": "a"}},
            {"labels": {"alertname": "Disk", "host": "b", "severity": "critical"}},
        ],
    }
    assert message("alertmanager", payload) == (
        "🔥 [FIRING:2] Disk\n\n• host=a\n• (critical) host=b"
    )
    # A monitor without address, ping or time.
    kuma = {"heartbeat": {"status": 0}, "monitor": {"name": "db"}, "msg": ""}
    assert message("uptime-kuma", kuma) == "🔴 DOWN: db"


@pytest.mark.usefixtures("request_context")
def test_text_loses_control_characters_and_is_cut_with_an_ellipsis():
    assert message("text", "Backup done\r\nin 3 min\x07\x00 ✅") == "Backup done\nin 3 min ✅"
    long = message("text", "é" * 1500)
    assert len(long) == MESSAGE_MAX_CHARS
    assert long.endswith("é…")


@pytest.mark.usefixtures("request_context")
def test_the_generic_format_without_a_template_lists_the_fields():
    assert message("generic", {"event": "deploy", "ok": True, "n": 3}) == (
        "event: deploy\nok: True\nn: 3"
    )
    assert message("generic", [1, 2]) == "[1, 2]"
