"""Rough edges a first-time user hit (issue 20): the 404 page's title, the API's 404 wording,
/favicon.ico."""

from __future__ import annotations

from tests.htmltree import parse


def test_a_missing_page_says_so_in_its_title(client):
    answer = client.get("/no-such-page")
    assert answer.status_code == 404
    page = parse(answer.get_data(as_text=True))
    assert page.one("title").text.startswith("Page not found")
    assert page.one("h1").text == "Page not found"
    assert "something went wrong" not in answer.get_data(as_text=True)


def test_the_apis_404_speaks_to_a_program(client):
    for path in ("/api/v1/nothing-here", "/api/v1/connections/999999"):
        answer = client.get(path, headers={"Authorization": "Bearer nsk_nope"})
        assert answer.is_json, path
    error = client.get("/api/v1/nothing-here").get_json()["error"]
    assert error["code"] == "not_found"
    assert "home page" not in error["message"]
    assert "/api/v1/openapi.json" in error["message"]


def test_favicon_ico_is_the_sites_icon(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200
    assert answer.mimetype == "image/svg+xml"
    assert answer.get_data().lstrip().startswith(b"<svg")


def test_the_port_moves_the_addresses_that_depend_on_it(tmp_path, monkeypatch):
    from notify_site import create_app
    from notify_site.config import port_defaults
    from tests.conftest import make_test_config

    assert port_defaults("5100") == {
        "NOTIFY_BOT_ORIGIN": "http://127.0.0.1:5100/relay",
        "NOTIFY_API_ORIGIN": "http://127.0.0.1:5100/relay",
        "NOTIFY_REDIRECT_URI": "http://127.0.0.1:5100/callback",
    }
    assert port_defaults(None) == port_defaults("x") == port_defaults("70000") == {}
    monkeypatch.setenv("PORT", "5100")
    config = make_test_config(tmp_path)
    for key in ("NOTIFY_BOT_ORIGIN", "NOTIFY_API_ORIGIN", "NOTIFY_REDIRECT_URI"):
        config.pop(key, None)
    app = create_app(config)
    assert app.config["NOTIFY_REDIRECT_URI"] == "http://127.0.0.1:5100/callback"
    assert app.config["NOTIFY_API_ORIGIN"] == "http://127.0.0.1:5100/relay"
    # Set explicitly, an address stays as given.
    monkeypatch.setenv("NOTIFY_SITE_NOTIFY_REDIRECT_URI", "https://notify.example/callback")
    assert create_app(config).config["NOTIFY_REDIRECT_URI"] == "https://notify.example/callback"


def test_setup_says_what_it_did_to_the_database(tmp_path):
    from notify_site import create_app
    from tests.conftest import make_test_config

    app = create_app(make_test_config(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/new.sqlite3"))
    first = app.test_cli_runner().invoke(args=["setup"])
    assert first.exit_code == 0, first.output
    assert "Created the database schema (revision " in first.output
    again = app.test_cli_runner().invoke(args=["setup"])
    assert "is up to date (revision " in again.output


def test_the_status_and_admin_pages_name_the_time_zone(app, client, alice):
    from notify_site.extensions import db
    from notify_site.models import User
    from tests.factories import create_connection, create_notification, login

    with app.app_context():
        user = db.session.get(User, alice)
        user.timezone = "Asia/Tokyo"
        sent = create_notification(create_connection(user, label="Ops")).id
    login(client)
    status = client.get(f"/send/status?ids={sent}").get_data(as_text=True)
    assert parse(status).one("p", id="status-zone").text == "Times are in Japan Time."
    assert "Times are in Japan Time." in client.get("/admin").get_data(as_text=True)
