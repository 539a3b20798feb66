"""marshmallow schemas of the API v1: they validate requests, shape answers, and are the
OpenAPI document's schemas.

- :mod:`.requests` — the request bodies and arguments, and the validated
  :class:`~.requests.NotificationRequest`;
- :mod:`.responses` — the answers that are the API's own (what a POST queued, a page of
  connections); the entities in them, and the error answers, are
  :mod:`notify_site.serialisers`', shared with the site's own JSON;
- :mod:`.fields` — the request fields the API defines (a connection by id or label, a strict
  boolean, an uploaded file).
"""
