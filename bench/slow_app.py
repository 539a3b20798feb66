"""The app with a fixed added latency on every relay API call, as a far-away server would have.

Served by gunicorn in the benchmarks (``bench.slow_app:app``); the latency in milliseconds
comes from ``BENCH_RELAY_LATENCY_MS``. Only the benchmarks use it.
"""

from __future__ import annotations

import os
import time

from notify_site import create_app

LATENCY = float(os.environ.get("BENCH_RELAY_LATENCY_MS", "0")) / 1000

app = create_app()
_inner = app.wsgi_app


def _delayed(environ, start_response):
    if LATENCY and environ.get("PATH_INFO", "").startswith("/relay/api/"):
        time.sleep(LATENCY)
    return _inner(environ, start_response)


app.wsgi_app = _delayed
