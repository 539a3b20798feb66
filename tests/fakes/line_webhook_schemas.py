"""``webhook.yml`` as plain JSON Schema, for generating webhook events (issue 21).

The webhook fuzz (tests/integration/relay_line/test_line_webhook_fuzz.py) draws events from
LINE's own event schemas with a JSON Schema generator, which knows neither ``$ref`` into an
OpenAPI document nor OpenAPI's discriminators: :func:`webhook_schemas` flattens them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.line_contract import WEBHOOK_DOCUMENT, load_document, polymorphic

#: OpenAPI 3.0 keywords that are not JSON Schema (or not needed to generate values).
_OPENAPI_ONLY = {"discriminator", "externalDocs", "example", "description", "nullable"}
_INTEGER_FORMATS = {"int32": 2**31, "int64": 2**63}


@dataclass(frozen=True)
class WebhookSchemas:
    """``webhook.yml``'s event schemas as plain, self-contained JSON Schema.

    ``events`` maps each event type LINE defines (``Event``'s discriminator) to the schema of
    that event with its ``type`` pinned; ``message_types`` lists the message types
    (``MessageContent``'s discriminator). ``base_event`` is the schema every event shares (for
    an event of a type the relay has never heard of).
    """

    events: dict[str, dict[str, Any]]
    message_types: tuple[str, ...]
    base_event: dict[str, Any]


def webhook_schemas(directory: Path | None = None) -> WebhookSchemas:
    """Flatten ``webhook.yml`` for a JSON Schema generator.

    ``$ref`` are inlined; a discriminated base becomes ``anyOf`` its subtypes, each with the
    discriminating property pinned to its value (so a ``source`` is a user, group or room
    source, each with its own fields); ``format: int32/int64`` become bounds; OpenAPI-only
    keywords are dropped.
    """
    document = polymorphic(load_document(WEBHOOK_DOCUMENT, directory))
    schemas = document["components"]["schemas"]

    def flat(node: Any) -> Any:
        if isinstance(node, list):
            return [flat(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return flat(schemas[_name(node["$ref"])])
        if "discriminator" in node:
            return {"anyOf": list(_subtypes(node["discriminator"]).values())}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "properties":  # property names, each with a schema
                out[key] = {name: flat(schema) for name, schema in value.items()}
            elif key not in _OPENAPI_ONLY:
                out[key] = flat(value)
        if out.get("type") == "integer" and out.get("format") in _INTEGER_FORMATS:
            bound = _INTEGER_FORMATS[out.pop("format")]
            out.setdefault("minimum", -bound)
            out.setdefault("maximum", bound - 1)
        elif out.get("format") in ("int32", "int64", "double", "float"):
            out.pop("format")
        return out

    def _subtypes(discriminator: dict[str, Any]) -> dict[str, dict[str, Any]]:
        prop = discriminator["propertyName"]
        return {
            value: {
                "allOf": [
                    flat(schemas[_name(ref)]),
                    {"properties": {prop: {"enum": [value]}}, "required": [prop]},
                ]
            }
            for value, ref in discriminator["mapping"].items()
        }

    event_discriminator = schemas["Event"]["discriminator"]
    message_discriminator = schemas["MessageContent"]["discriminator"]
    return WebhookSchemas(
        events=_subtypes(event_discriminator),
        message_types=tuple(message_discriminator["mapping"]),
        base_event=flat(schemas["EventBase"]),
    )


def _name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]
