"""The JSON API v1's OpenAPI document is generated from the code, and the API answers JSON
where the site keeps its HTML pages."""

from __future__ import annotations

from tests.unit.api.calls import ERROR_KEYS, assert_api_error, auth


def _resolve_refs(document: dict, node) -> None:
    """Fail on any $ref that does not point into the document."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None:
            target = document
            for part in ref.removeprefix("#/").split("/"):
                assert part in target, ref
                target = target[part]
        for value in node.values():
            _resolve_refs(document, value)
    elif isinstance(node, list):
        for value in node:
            _resolve_refs(document, value)


def test_openapi_document_is_generated_from_the_code(client):
    answer = client.get("/api/v1/openapi.json")  # no key needed
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    document = answer.get_json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"]
    assert set(document["paths"]) >= {
        "/api/v1/notifications",
        "/api/v1/notifications/{notification_id}",
        "/api/v1/connections",
        "/api/v1/connections/{connection_id}",
        "/api/v1/openapi.json",
    }
    _resolve_refs(document, document)
    schemas = document["components"]["schemas"]
    post_op = document["paths"]["/api/v1/notifications"]["post"]
    content = post_op["requestBody"]["content"]
    json_schema = schemas[content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert "message" in json_schema["properties"]
    assert "message" in json_schema["required"]
    assert json_schema["additionalProperties"] is False
    form_schema = schemas[content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert form_schema["properties"]["image_file"] == {
        "type": "string",
        "format": "binary",
        "description": "A PNG or JPEG image of at most 5 MiB and 2048x2048 pixels; "
        "it takes the place of image URLs",
    }
    assert {"202", "400", "401", "404", "409", "413", "415", "422", "503"} <= set(
        post_op["responses"]
    )
    assert any(p["name"] == "Idempotency-Key" for p in post_op["parameters"])
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
    error_schema = schemas["ErrorResponse"]
    assert set(schemas["ErrorDetail"]["properties"]) == ERROR_KEYS
    assert "error" in error_schema["properties"]
    listing = document["paths"]["/api/v1/connections"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"page", "per_page"}


def test_the_site_keeps_its_html_error_pages(client):
    answer = client.get("/no-such-page")
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"
    assert "<html" in answer.get_data(as_text=True).lower()


def test_unknown_api_paths_and_methods_answer_json(client, world):
    assert_api_error(
        client.get("/api/v1/nothing-here", headers=auth(world.alice_key)), 404, "not_found"
    )
    assert_api_error(
        client.put("/api/v1/notifications", headers=auth(world.alice_key)),
        405,
        "method_not_allowed",
    )
