"""A fault-injecting Notify API server over real HTTP: the witness of the delivery figures.

It serves ``POST /api/notify``, ``GET /api/status`` and ``POST /api/revoke`` with LINE Notify's
contract (Bearer token, form fields, JSON answers, the five ``X-RateLimit-*`` headers) and
**records every call** it receives: token, message, arrival time, the status it answered, and
whether the call came into a window the server had already declared spent. Figures are
computed from these records — what the server saw — never from the client's own account.

Faults, all optional (``FakeNotify`` attributes, safe to change while serving):

- ``server_error_rate``, ``timeout_rate``, ``rate_limited_rate``: the share of calls answered
  5xx, held past the client's timeout (``stall_seconds``), or 429 with ``Remaining: 0``
  (the window is then spent until its Reset). Drawn from a seeded RNG.
- ``outage``: while true, every call is answered 503.
- ``reject_marker``: a message containing it is answered 400 (a payload the server refuses).
- :meth:`revoke`: the token is answered 401 from then on.
- :meth:`hold`: calls wait (bounded) until the given event is set: a server that blocks, so a
  test can kill its client in the middle of a call.

Rate limit: ``limit`` calls per token per window of ``window_seconds``; a window opens at a
token's first call and resets at the next whole second after ``window_seconds`` (as the
built-in relay does). 5xx and stalled calls fail in front of the limiter (no window spent, no
headers, as a failing proxy would); everything else passes through it.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

NOTIFY = "/api/notify"
STATUS = "/api/status"
REVOKE = "/api/revoke"
TIMEOUT = 0  # the status recorded for a call held past the client's timeout


@dataclass
class Call:
    """One request as the server saw it."""

    path: str
    token: str
    message: str | None
    at: float  # arrival, epoch seconds
    status: int = 0  # the answer (TIMEOUT for a stalled one)
    #: It arrived while the server had declared the token's window spent (an answer with
    #: ``Remaining: 0`` before its Reset): a call the client should never have made.
    into_spent_window: bool = False
    #: The token's window this call was counted in, by its Reset (None: not counted).
    window_reset: int | None = None


@dataclass
class _Window:
    reset: int
    used: int = 0  # calls that reached the limiter in this window (admitted or refused)
    spent: bool = False  # declared spent: an answer said Remaining: 0


@dataclass
class FakeNotify:
    """The fake's state and its WSGI app; tests and the chaos harness read ``calls``."""

    limit: int = 1000
    window_seconds: int = 3600
    image_limit: int = 50
    server_error_rate: float = 0.0
    timeout_rate: float = 0.0
    rate_limited_rate: float = 0.0
    stall_seconds: float = 2.0
    outage: bool = False
    reject_marker: str | None = None
    seed: int | None = None
    calls: list[Call] = field(default_factory=list)
    #: Answers by status (TIMEOUT for stalled calls), for cheap progress checks.
    answered: Counter = field(default_factory=Counter)
    revoked: dict[str, float] = field(default_factory=dict)  # token -> when
    _windows: dict[str, _Window] = field(default_factory=dict)
    _history: dict[str, list[_Window]] = field(default_factory=lambda: defaultdict(list))
    _hold: threading.Event | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    # --- controls ------------------------------------------------------------------------

    def revoke(self, token: str) -> None:
        with self._lock:
            self.revoked.setdefault(token, time.time())

    def hold(self, release: threading.Event | None) -> None:
        """Calls to /api/notify wait (at most 60 s) for ``release`` before answering."""
        with self._lock:
            self._hold = release

    # --- reading -------------------------------------------------------------------------

    def notify_calls(self) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.path == NOTIFY]

    def delivered(self) -> Counter:
        """How many times each message was accepted (answered 200)."""
        return Counter(call.message for call in self.notify_calls() if call.status == 200)

    def windows(self) -> dict[str, list[int]]:
        """Per token, the calls that reached the limiter in each window, in order."""
        with self._lock:
            return {token: [w.used for w in windows] for token, windows in self._history.items()}

    # --- the WSGI app --------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        message = request.form.get("message") if request.path == NOTIFY else None
        call = Call(request.path, token, message, time.time())
        with self._lock:
            self.calls.append(call)
            held = self._hold if request.path == NOTIFY else None
            draw = self._rng.random()
        if held is not None:
            held.wait(60)
        response = self._answer(request, call, draw)
        call.status = response.status_code if response is not None else TIMEOUT
        with self._lock:
            self.answered[call.status] += 1
        if response is None:
            time.sleep(self.stall_seconds)  # the client has given up by now
            response = self._json(503, "stalled")
        return response(environ, start_response)

    def _answer(self, request: Request, call: Call, draw: float) -> Response | None:
        if request.path not in (NOTIFY, STATUS, REVOKE):
            return self._json(404, "Not found")
        with self._lock:
            # Judged on arrival, whatever happens to the call next (a 5xx, a stall...).
            open_window = self._windows.get(call.token)
            call.into_spent_window = (
                open_window is not None and open_window.spent and call.at < open_window.reset
            )
        if call.token in self.revoked or not call.token:
            return self._json(401, "Invalid access token")
        if self.outage:
            return self._json(503, "outage")
        if draw < self.server_error_rate:
            return self._json(500, "injected server error")
        if draw < self.server_error_rate + self.timeout_rate:
            return None
        with self._lock:
            window = self._window(call.token, call.at)
            call.window_reset = window.reset
            window.used += 1
            injected = draw < self.server_error_rate + self.timeout_rate + self.rate_limited_rate
            if window.spent or window.used > self.limit or injected:
                window.spent = True
                return self._limited(self._json(429, "Too Many Requests"), window, 0)
            remaining = self.limit - window.used
            window.spent = remaining == 0
        if request.path == REVOKE:
            self.revoke(call.token)
            return self._limited(self._json(200, "ok"), window, remaining)
        if request.path == STATUS:
            answer = self._json(200, "ok", targetType="USER", target="Chaos chat")
            return self._limited(answer, window, remaining)
        if not call.message:
            return self._limited(self._json(400, "message: must not be empty"), window, remaining)
        if self.reject_marker and self.reject_marker in call.message:
            return self._limited(self._json(400, "Invalid image"), window, remaining)
        return self._limited(self._json(200, "ok"), window, remaining)

    def _window(self, token: str, now: float) -> _Window:
        window = self._windows.get(token)
        if window is None or now >= window.reset:
            window = _Window(reset=math.ceil(now + self.window_seconds))
            self._windows[token] = window
            self._history[token].append(window)
        return window

    def _limited(self, response: Response, window: _Window, remaining: int) -> Response:
        response.headers["X-RateLimit-Limit"] = str(self.limit)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-ImageLimit"] = str(self.image_limit)
        response.headers["X-RateLimit-ImageRemaining"] = str(self.image_limit)
        response.headers["X-RateLimit-Reset"] = str(window.reset)
        return response

    @staticmethod
    def _json(status: int, message: str, **extra) -> Response:
        body = json.dumps({"status": status, "message": message, **extra})
        return Response(body, status=status, mimetype="application/json")


class FakeNotifyServer:
    """The fake served over HTTP on a free loopback port, one thread per connection."""

    def __init__(self, state: FakeNotify | None = None) -> None:
        self.state = state or FakeNotify()
        self._server = make_server("127.0.0.1", 0, self.state, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self.state._hold is not None:
            self.state._hold.set()
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()
