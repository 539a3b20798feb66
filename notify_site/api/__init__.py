"""The JSON API v1 (SPEC 4.3): ``/api/v1/…``, authenticated with API keys.

Built with flask-smorest: the marshmallow schemas in :mod:`.schemas` validate the requests,
serialise the answers and, through apispec, become ``/api/v1/openapi.json``, so the document
cannot drift from the code that serves the API. Error handling stays the site's own
(:mod:`.errors`): every error is ``{"error": {"code", "message", "fields"}}``.

``notify_site.views.api.bp`` is the blueprint; registering it also builds its OpenAPI document.
"""
