"""``/metrics``: the web's Prometheus scrape endpoint (what it exposes: notify_site/metrics.py).

It answers only with ``Authorization: Bearer <METRICS_TOKEN>``: 404 while no token is
configured (the endpoint does not exist), 401 with a missing or wrong one.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request

from notify_site import metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics_view():
    """The Prometheus scrape endpoint (bearer token from ``METRICS_TOKEN``)."""
    token = metrics.configured_token(current_app.config)
    if token is None:
        abort(404)
    if not metrics.authorized(token, request.headers.get("Authorization")):
        return Response("unauthorized\n", 401, metrics.UNAUTHORIZED_HEADERS, mimetype="text/plain")
    body, content_type = metrics.expose(metrics.site_metrics(), request.headers.get("Accept"))
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response
