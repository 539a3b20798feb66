"""Error answers: JSON where a client expects JSON, a page for people."""


def test_unknown_relay_api_paths_answer_notify_json(client):
    missing = client.post("/relay/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json["status"] == 404
    wrong_method = client.get("/relay/api/notify")
    assert wrong_method.status_code == 405
    assert wrong_method.json == {"status": 405, "message": wrong_method.json["message"]}
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert page.mimetype == "text/html"
