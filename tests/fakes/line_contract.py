"""LINE's own OpenAPI documents as the judge of the LINE fakes (issue 21).

LY Corporation publishes machine-readable OpenAPI documents of its APIs. An unchanged copy of
the three the relay depends on lies in ``../shared/line-openapi/`` beside the project's root
(``messaging-api.yml``, ``channel-access-token.yml``, ``webhook.yml``); they are read from there
at test time and never copied into the project. When the folder is missing every test that
uses a LINE fake fails with :class:`LineDocumentsMissing`'s message: it is not skipped, since
a fake nobody checks is exactly what this module exists to prevent.

:class:`LineContract` checks one exchange with a fake:

* :meth:`~LineContract.check_request` finds the operation by method and path in
  ``messaging-api.yml`` or ``channel-access-token.yml`` and validates it with openapi-core:
  path, query and header parameters (``X-Line-Retry-Key`` must be a UUID), the Bearer security
  requirement, the media type and the body (JSON, or a form for the token endpoints). A path
  or method LINE does not document is a violation too.
* :meth:`~LineContract.check_response` validates the fake's answer against the response the
  operation documents for that status, strictly: a property the schema does not list is a
  violation, so a fake cannot drift into answering fields LINE never sends. LINE's documents
  list few error statuses per operation (no 401, 404 or 500 anywhere), so an error status an
  operation does not list must carry the document's common ``ErrorResponse`` body.

Each returns one line per broken rule, naming the document, the operation, where in the
request the value sits and the schema keyword it broke; an empty list means LINE would accept
it.

Two things openapi-core does not do are done here, on a copy of each document:

* **Discriminators.** LINE's schemas are polymorphic the way OpenAPI Generator writes them: a
  base (``Message``, ``Event``, ``Source``...) names its subtypes in ``discriminator.mapping``
  and each subtype is ``allOf: [base, its own fields]``. openapi-schema-validator applies a
  discriminator only beside ``anyOf``/``oneOf``/``allOf``, so without help a text message
  missing its ``text`` would pass as a plain ``Message``. :func:`polymorphic` rewrites each
  base as ``{discriminator, allOf: [a copy of the base without it]}`` and points the subtypes
  at the copy: every message is then checked against ``TextMessage``, ``ImageMessage``...,
  and a type LINE does not define is refused.
* **Formats.** jsonschema checks ``uuid`` by itself and ``uri`` only with rfc3986-validator
  installed (requirements-dev.txt pins it for this).

``webhook.yml`` describes what LINE sends, not a fake's answers:
:meth:`~LineContract.check_webhook_body` checks a webhook body against it, and
``tests/fakes/line_webhook_schemas.py`` turns its event schemas into plain JSON Schema for the
webhook fuzz (tests/integration/relay_line/test_line_webhook_fuzz.py).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import (
    OperationNotFound,
    PathNotFound,
    ServerNotFound,
)
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from werkzeug.datastructures import Headers, ImmutableMultiDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Where the documents are read from: ``shared/line-openapi`` beside the project's root.
DOCUMENTS_DIR = PROJECT_ROOT.parent / "shared" / "line-openapi"
#: The documents describing what the fakes serve (``webhook.yml`` describes what LINE sends).
API_DOCUMENTS = ("messaging-api.yml", "channel-access-token.yml")
WEBHOOK_DOCUMENT = "webhook.yml"
#: The hosts the documents' ``servers`` name. The fakes serve every host on one port, so a
#: request is looked up under each in turn (the Messaging API's blob operations, such as
#: message content, live on api-data.line.me).
LINE_HOSTS = ("https://api.line.me", "https://api-data.line.me")


class LineDocumentsMissing(AssertionError):
    """LINE's OpenAPI documents are not where the tests read them from."""


def load_document(name: str, directory: Path | None = None) -> dict[str, Any]:
    """One of LINE's documents, parsed (a fresh copy: callers may change it)."""
    return copy.deepcopy(_parsed(name, directory or DOCUMENTS_DIR))


@functools.cache
def _parsed(name: str, directory: Path) -> dict[str, Any]:
    path = directory / name
    if not path.is_file():
        raise LineDocumentsMissing(
            f"LINE's OpenAPI document {path} is missing. The tests of the LINE fakes read "
            f"LY's documents from shared/line-openapi/ beside the project's root "
            f"({directory}); put the shared folder there (CI has it) — the tests fail "
            "rather than skip without it, since unchecked fakes could drift from LINE."
        )
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def polymorphic(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` whose discriminated base schemas dispatch to their subtypes.

    ``Base`` (with ``discriminator.mapping``) becomes ``{discriminator, allOf: [BaseBase]}``,
    where ``BaseBase`` is ``Base`` without its discriminator, and each mapped subtype's
    ``allOf`` reference to ``Base`` now points at ``BaseBase`` (so checking a subtype does not
    dispatch again, endlessly). openapi-schema-validator then checks an instance of ``Base``
    against the subtype its discriminating property names.
    """
    document = copy.deepcopy(document)
    schemas = document["components"]["schemas"]
    for name, schema in list(schemas.items()):
        discriminator = schema.get("discriminator")
        if not discriminator or not discriminator.get("mapping"):
            continue
        base_name = f"{name}Base"
        if base_name in schemas:
            raise ValueError(f"cannot rewrite {name}: the document already has {base_name}")
        schemas[base_name] = {k: v for k, v in schema.items() if k != "discriminator"}
        own_ref = f"#/components/schemas/{name}"
        for target in discriminator["mapping"].values():
            subtype = schemas.get(_schema_name(target))
            for part in (subtype or {}).get("allOf", []):
                if part.get("$ref") == own_ref:
                    part["$ref"] = f"#/components/schemas/{base_name}"
        schemas[name] = {
            "discriminator": discriminator,
            "allOf": [{"$ref": f"#/components/schemas/{base_name}"}],
        }
    return document


def _schema_name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


# --- Checking exchanges with a fake --------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """A request as the fake received it (``path`` still percent-encoded, as sent)."""

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class _OpenAPIRequest:
    """An :class:`Exchange` in the shape openapi-core reads (its ``Request`` protocol)."""

    def __init__(self, exchange: Exchange, host_url: str) -> None:
        self.host_url = host_url
        self.path = exchange.path
        self.method = exchange.method.lower()
        self.body = exchange.body or None
        self.content_type = exchange.content_type or "application/octet-stream"
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(exchange.query, keep_blank_values=True)),
            header=Headers(exchange.headers),
            cookie=ImmutableMultiDict(),
        )


class _OpenAPIResponse:
    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        self.status_code = status
        self.content_type = content_type
        self.data = body
        self.headers = Headers()


@dataclass
class _Document:
    name: str
    requests: OpenAPI
    responses: OpenAPI
    error_response: OAS30Validator


@dataclass(frozen=True)
class _Found:
    document: _Document
    host: str
    label: str


class LineContract:
    """What LINE's documents allow: one instance per process (see :func:`line_contract`)."""

    def __init__(self, directory: Path | None = None) -> None:
        self._documents = [self._load(name, directory) for name in API_DOCUMENTS]
        # webhook.yml's dummy operation (POST /callback) carries the CallbackRequest body.
        self._webhook = OpenAPI.from_dict(polymorphic(load_document(WEBHOOK_DOCUMENT, directory)))

    @staticmethod
    def _load(name: str, directory: Path | None) -> _Document:
        document = polymorphic(load_document(name, directory))
        # Requests as LINE documents them; answers strictly (no property LINE does not list).
        requests = OpenAPI.from_dict(document)
        responses = OpenAPI.from_dict(
            document, config=Config(additional_properties_default_policy="forbid")
        )
        # An error status the operation does not list: the document's common error body,
        # held as strictly as the documented answers.
        error_schema = dict(document["components"]["schemas"]["ErrorResponse"])
        error_schema.setdefault("additionalProperties", False)
        error = OAS30Validator(
            {**error_schema, "components": document["components"]},
            format_checker=oas30_format_checker,
        )
        return _Document(name, requests, responses, error)

    def _find(self, exchange: Exchange) -> _Found | str:
        """The document and operation for ``exchange``, or why there is none."""
        for document in self._documents:
            finder = APICallPathFinder(document.requests.spec)
            for host in LINE_HOSTS:
                try:
                    found = finder.find(exchange.method.lower(), host + exchange.path)
                except (PathNotFound, ServerNotFound):
                    continue
                except OperationNotFound:
                    return (
                        f"{document.name} documents no {exchange.method} operation for "
                        f"{exchange.path}: LINE would refuse it"
                    )
                operation = found.operation
                operation_id = operation.get("operationId", "?")
                label = f"{document.name} {operation_id} ({exchange.method} {found.path.parts[-1]})"
                return _Found(document, host, label)
        return (
            f"no LINE document describes {exchange.method} {exchange.path}: "
            "LINE would answer 404 (the relay calls an endpoint that does not exist)"
        )

    def check_request(self, exchange: Exchange) -> list[str]:
        """Every rule of LINE's documents that ``exchange`` breaks (empty: LINE accepts it)."""
        found = self._find(exchange)
        if isinstance(found, str):
            return [found]
        request = _OpenAPIRequest(exchange, found.host)
        return [
            f"{found.label}: request {line}"
            for error in found.document.requests.iter_request_errors(request)
            for line in _describe(error)
        ]

    def check_response(
        self, exchange: Exchange, status: int, content_type: str, body: bytes
    ) -> list[str]:
        """Every way the fake's answer to ``exchange`` differs from what LINE documents."""
        found = self._find(exchange)
        if isinstance(found, str):
            # The request was already reported; an answer to it cannot be judged.
            return []
        request = _OpenAPIRequest(exchange, found.host)
        response = _OpenAPIResponse(status, content_type, body)
        problems: list[str] = []
        for error in found.document.responses.iter_response_errors(request, response):
            if isinstance(error, ResponseNotFound):
                problems.extend(self._undocumented_status(found, status, content_type, body))
                continue
            problems.extend(_describe(error))
        return [f"{found.label}: answer {status}: {line}" for line in problems]

    def check_webhook_body(self, body: bytes) -> list[str]:
        """Every rule of ``webhook.yml`` a webhook body breaks (what LINE would never send)."""
        exchange = Exchange(
            "POST", "/callback", headers={"content-type": "application/json"}, body=body
        )
        request = _OpenAPIRequest(exchange, "https://example.com")
        return [
            f"{WEBHOOK_DOCUMENT} callback: {line}"
            for error in self._webhook.iter_request_errors(request)
            for line in _describe(error)
        ]

    @staticmethod
    def _undocumented_status(
        found: _Found, status: int, content_type: str, body: bytes
    ) -> list[str]:
        if status < 400:
            return [f"status {status} is not one the operation documents"]
        if content_type != "application/json":
            return [f"an error answer must be JSON (ErrorResponse), not {content_type!r}"]
        try:
            data = json.loads(body)
        except ValueError:
            return ["the error answer is not JSON"]
        return [
            _schema_error_line(error, "ErrorResponse")
            for error in found.document.error_response.iter_errors(data)
        ]


def _describe(error: Exception) -> Iterator[str]:
    """One line per broken rule of an openapi-core error, naming the rule."""
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors:
        where = _where(error)
        for schema_error in schema_errors:
            yield _schema_error_line(schema_error, where)
        return
    detail = f" ({cause})" if cause is not None and str(cause) not in str(error) else ""
    yield f"{error}{detail}"


def _where(error: Exception) -> str:
    name = getattr(error, "name", None)
    location = getattr(error, "location", None)
    if name and location:
        return f"{location} parameter {name}"
    return "body"


def _schema_error_line(error: Any, where: str) -> str:
    path = "/".join(str(part) for part in error.absolute_path)
    rule = "/".join(str(part) for part in error.schema_path)
    at = f"{where} at {path}" if path else where
    return f"{at}: {error.message} [rule {error.validator!r}: {rule}]"


@functools.cache
def _contract(directory: Path) -> LineContract:
    return LineContract(directory)


def line_contract() -> LineContract:
    """The process's :class:`LineContract` (the documents are parsed once)."""
    return _contract(DOCUMENTS_DIR)
