"""The JSON API v1 (SPEC 4.3): ``/api/v1/…``, authenticated with API keys.

Built with flask-smorest: the marshmallow schemas validate the requests (:mod:`.schemas`),
serialise the answers (the API's own in :mod:`.schemas`, its entities and errors from
:mod:`notify_site.serialisers`) and, through apispec, become ``/api/v1/openapi.json``, so the
document cannot drift from the code that serves the API. Error handling stays the site's own
(:mod:`.errors`): every error is ``{"error": {"code", "message", "fields"}}``.

``notify_site.api.views.bp`` is the blueprint (``create_app`` registers it); registering it
also builds its OpenAPI document (:mod:`.spec`).
"""
