"""Every ``*.json`` route answers JSON, always: signed out, without the rights, to a method it
does not take, on an unexpected error, and whatever the Accept header says (issue 12).

``/send/status.json`` once answered a signed-out script with an HTML 401 page. The routes are
read from the URL map, so a new ``.json`` route is held to this too.
"""

from __future__ import annotations

import pytest

from tests.factories import create_user, login
from tests.pages import collection_app

with collection_app() as _app:
    JSON_RULES = sorted(
        (rule.rule, sorted(rule.arguments), sorted(rule.methods or ()))
        for rule in _app.url_map.iter_rules()
        if rule.rule.endswith(".json")
    )

RULE_IDS = [rule for rule, _, _ in JSON_RULES]

# A browser's Accept header: the answer must be JSON all the same.
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _path(rule: str, arguments: list[str]) -> str:
    for name in arguments:
        rule = rule.replace(f"<{name}>", "1")  # no .json route has a typed argument yet
    return rule


def check_json(answer, what: str) -> None:
    assert answer.is_json, f"{what}: {answer.status_code} {answer.mimetype}"
    if answer.status_code >= 400:
        body = answer.get_json()
        if "error" in body:  # the site's shape
            assert body["error"]["code"], body
            assert body["error"]["message"], body
        else:  # the relay's, LINE Notify's shape
            assert body["status"] == answer.status_code, body
            assert body["message"], body


@pytest.fixture
def mallory(app):
    """A signed-in user without admin rights (and an admin elsewhere, as on a real site)."""
    with app.app_context():
        create_user("root", admin=True)
        create_user("mallory")
    client = app.test_client()
    login(client, "mallory")
    return client


def test_there_are_json_routes_to_check():
    paths = {rule for rule, _, _ in JSON_RULES}
    assert {"/send/status.json", "/dashboard.json", "/admin/summary.json"} <= paths


@pytest.mark.parametrize(("rule", "arguments", "methods"), JSON_RULES, ids=RULE_IDS)
def test_signed_out_the_answer_is_json(client, rule, arguments, methods):
    path = _path(rule, arguments)
    check_json(client.get(path, headers=BROWSER), f"GET {path} signed out")


@pytest.mark.parametrize(("rule", "arguments", "methods"), JSON_RULES, ids=RULE_IDS)
def test_without_the_rights_the_answer_is_json(mallory, rule, arguments, methods):
    path = _path(rule, arguments)
    check_json(mallory.get(path, headers=BROWSER), f"GET {path} as a user")


@pytest.mark.parametrize(("rule", "arguments", "methods"), JSON_RULES, ids=RULE_IDS)
def test_a_method_it_does_not_take_is_a_json_405(mallory, rule, arguments, methods):
    path = _path(rule, arguments)
    for method in {"POST", "PUT", "DELETE"} - set(methods):
        answer = mallory.open(path, method=method, headers=BROWSER)
        assert answer.status_code == 405, f"{method} {path}"
        check_json(answer, f"{method} {path}")


@pytest.mark.parametrize(("rule", "arguments", "methods"), JSON_RULES, ids=RULE_IDS)
def test_an_unexpected_error_is_a_json_500(app, rule, arguments, methods):
    @app.before_request
    def fail():
        raise RuntimeError("injected failure")

    path = _path(rule, arguments)
    answer = app.test_client().get(path, headers=BROWSER)
    assert answer.status_code == 500, path
    check_json(answer, f"GET {path} failing")
    assert "injected" not in answer.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/no/such.json", "/admin/nothing.json", "/relay/none.json"])
def test_an_unknown_json_path_is_a_json_404(client, path):
    answer = client.get(path, headers=BROWSER)
    assert answer.status_code == 404
    check_json(answer, path)


def test_send_status_json_signed_out_is_a_json_401(client):
    answer = client.get("/send/status.json?ids=1", headers=BROWSER)
    assert answer.status_code == 401
    assert answer.get_json()["error"]["code"] == "unauthorized"


def test_send_status_json_without_ids_is_a_json_400(mallory):
    answer = mallory.get("/send/status.json", headers=BROWSER)
    assert answer.status_code == 400
    assert "ids=1,2,3" in answer.get_json()["error"]["message"]
