"""With CSRF on, as in production: Retry and Cancel without the form's token are refused and
change nothing; with the token from the admin page they work."""

from __future__ import annotations

import re

import pytest

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Notification
from tests.admin_scenarios import problem_scenario, snapshot
from tests.conftest import make_test_config
from tests.factories import PASSWORD, create_user

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, WTF_CSRF_ENABLED=True)


@pytest.fixture
def signed_in_admin(app, client):
    with app.app_context():
        create_user("root", admin=True)
    login_page = client.get("/login").get_data(as_text=True)
    token = TOKEN.search(login_page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', login_page
    )
    answer = client.post(
        "/login", data={"username": "root", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert answer.status_code == 302
    return client


@pytest.fixture
def rows(app):
    with app.app_context():
        return problem_scenario(utcnow())


def _everything(app, ids: dict[str, int]) -> dict[str, dict]:
    with app.app_context():
        return {name: snapshot(row_id) for name, row_id in ids.items()}


@pytest.mark.parametrize(
    ("action", "name"), [("retry", "failed_recent"), ("cancel", "queued_overdue")]
)
def test_actions_without_the_token_are_refused_and_change_nothing(
    app, signed_in_admin, rows, action, name
):
    before = _everything(app, rows)
    answer = signed_in_admin.post(f"/admin/notifications/{rows[name]}/{action}")
    assert answer.status_code == 400
    assert "form expired" in answer.get_data(as_text=True)
    answer = signed_in_admin.post(
        f"/admin/notifications/{rows[name]}/{action}", data={"csrf_token": "forged"}
    )
    assert answer.status_code == 400
    assert _everything(app, rows) == before


def test_actions_with_the_pages_token_work(app, signed_in_admin, rows):
    page = signed_in_admin.get("/admin").get_data(as_text=True)
    token = TOKEN.search(page).group(1)
    answer = signed_in_admin.post(
        f"/admin/notifications/{rows['failed_recent']}/retry", data={"csrf_token": token}
    )
    assert answer.status_code == 302
    # The tokens of the buttons the refreshing page swaps in work as well.
    fragment = signed_in_admin.get("/admin/parts").get_data(as_text=True)
    assert TOKEN.search(fragment) is not None
    # And the token that summary.json hands out.
    fresh = signed_in_admin.get("/admin/summary.json").json["csrf_token"]
    answer = signed_in_admin.post(
        f"/admin/notifications/{rows['queued_overdue']}/cancel", data={"csrf_token": fresh}
    )
    assert answer.status_code == 302
    with app.app_context():
        assert db.session.get(Notification, rows["failed_recent"]).status == "queued"
        assert db.session.get(Notification, rows["queued_overdue"]).status == "failed"
