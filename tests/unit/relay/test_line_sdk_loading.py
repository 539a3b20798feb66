"""line-bot-sdk is loaded only when channel mode uses it (notify_site/relay/line/channel.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def loaded_after(code: str, tmp_path) -> set[str]:
    """Top-level packages among linebot/segno that a fresh interpreter has after ``code``."""
    script = textwrap.dedent(
        f"""
        import sys
        {code}
        print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}} & {{"linebot", "segno"}})))
        """
    )
    env = {"NOTIFY_SITE_INSTANCE_PATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert output.returncode == 0, output.stderr
    return set(output.stdout.split())


def test_a_sandbox_app_starts_and_serves_without_loading_the_sdk(tmp_path):
    code = """
        from notify_site import create_app
        app = create_app({"DATABASE_URL": "sqlite://", "TESTING": True})
        with app.test_client() as client:
            assert client.get("/healthz").status_code in (200, 503)
            assert client.get("/relay/inbox").status_code in (302, 500)
            assert client.get("/relay/oauth/authorize").status_code in (400, 500)
    """
    assert loaded_after(code, tmp_path) == set()


def test_the_webhook_module_loads_the_sdk_when_it_checks_a_signature(tmp_path):
    code = """
        from notify_site.config import DEFAULTS
        from notify_site.relay.line import webhook
        from notify_site.relay.line.channel import settings_from_config
        assert "linebot" not in sys.modules
        settings = settings_from_config({
            **DEFAULTS,
            "RELAY_LINE_CHANNEL_ID": "1234567890",
            "RELAY_LINE_CHANNEL_SECRET": "s" * 32,
            "RELAY_LINE_CHANNEL_ACCESS_TOKEN": "t" * 40,
            "RELAY_PUBLIC_BASE_URL": "https://notify.example.com",
        })
        try:
            webhook.check_signature(settings, b"{}", "bad")
        except webhook.WebhookSignatureError:
            pass
    """
    assert loaded_after(code, tmp_path) == {"linebot"}
