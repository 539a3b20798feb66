"""The web process under fire: one Idempotency-Key posted 1,000 times at once, gunicorn killed
with ``kill -9`` while 20 clients post, and PostgreSQL restarted 3 times mid-run.

One world: gunicorn serving `wsgi:app` (``CHAOS_WEB_PROCESSES`` × 4 threads) and delivery
workers, against the fake Notify server, on the throwaway cluster. In order:

1. **Idempotency**: ``CHAOS_IDEMPOTENT_POSTS`` POSTs of one body with one key, sent together
   from 100 threads: one row; every answer identical (status and bytes); the same key with
   another body → 422.
2. **Web process killed**: ``CHAOS_WEB_CLIENTS`` clients post without pause; the gunicorn
   master and its workers get SIGKILL together (``CHAOS_WEB_KILLS`` times) and gunicorn is
   started again. Every notification answered 202 must reach the server: 0 lost.
3. **PostgreSQL restarted** ``CHAOS_RESTARTS`` times (stopped ``fast``, down
   ``CHAOS_DOWN_SECONDS``, started) while clients post at a steady 40 a second and the workers
   are busy with a burst of 500 rows queued at once (the stop comes in the middle of it): the
   API answers 503, never 500, while it is down (/healthz too); every 202 and every row of the
   bursts reaches the server; after each start, everything accepted before the stop is
   terminal within 30 s.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select

from chaos.harness import DELIVERED, TERMINAL, Figure, Run, World, knob, wait_until
from notify_site.models import Notification
from tests.fakes.notify_api import FakeNotify

DRAIN_TARGET = 30  # seconds after the database is back


class Poster:
    """A client posting one notification at a time until stopped; it keeps every answer."""

    def __init__(
        self, url: str, key: str, connection_ids: list[int], name: str, pause: float = 0
    ) -> None:
        self.url = f"{url}/api/v1/notifications"
        self.pause = pause
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.connection_ids = connection_ids
        self.name = name
        self.accepted: dict[int, str] = {}  # notification id -> message
        self.answers: list[tuple[float, int, str]] = []  # (time, status or 0, error code)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            message = f"{self.name} {n}"
            connection = self.connection_ids[n % len(self.connection_ids)]
            n += 1
            try:
                answer = self.session.post(
                    self.url, json={"connection": connection, "message": message}, timeout=30
                )
            except requests.RequestException:  # the web process is down, or died mid-request
                self.answers.append((time.time(), 0, "no answer"))
                self.session.close()
                time.sleep(0.05)
                continue
            try:
                body = answer.json()
            except ValueError:
                body = {}
            code = body.get("error", {}).get("code", "") if answer.status_code != 202 else ""
            self.answers.append((time.time(), answer.status_code, code))
            if answer.status_code == 202:
                for record in body["notifications"]:
                    self.accepted[record["id"]] = message
                time.sleep(self.pause)
            else:
                time.sleep(0.05)

    def start(self) -> Poster:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


class Posters:
    def __init__(
        self,
        world: World,
        key: str,
        connection_ids: list[int],
        count: int,
        name: str,
        pause: float = 0,
    ):
        self.all = [
            Poster(world.web.url, key, connection_ids, f"{name}-{n}", pause).start()
            for n in range(count)
        ]

    def accepted(self) -> dict[int, str]:
        merged: dict[int, str] = {}
        for poster in self.all:
            merged.update(poster.accepted)
        return merged

    def statuses(self, since: float = 0, until: float = float("inf")) -> Counter:
        return Counter(
            (status, code)
            for poster in self.all
            for at, status, code in list(poster.answers)
            if since <= at <= until
        )

    def stop(self) -> None:
        for poster in self.all:
            poster._stop.set()
        for poster in self.all:
            poster.stop()


def lost(world: World, accepted: dict[int, str]) -> tuple[int, int]:
    """(accepted messages the server never received, accepted rows not delivered)."""
    delivered = world.fake.delivered()
    never_sent = sum(1 for message in accepted.values() if delivered[message] == 0)
    rows = world.scalar(select(func.count()).where(Notification.id.in_(list(accepted)), DELIVERED))
    return never_sent, len(accepted) - rows


def drained(world: World, ids: list[int]) -> bool:
    done = world.scalar(select(func.count()).where(Notification.id.in_(ids), TERMINAL))
    return done == len(ids)


# --- 1. one Idempotency-Key, 1,000 times at once --------------------------------------------


def idempotency(world: World, key: str, connection_id: int) -> list[Figure]:
    posts = knob("IDEMPOTENT_POSTS", 1000)
    url = f"{world.web.url}/api/v1/notifications"
    body = {"connection": connection_id, "message": "idempotent alert"}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "chaos-one-key"}
    start = threading.Barrier(100)
    local = threading.local()

    def post(_: int) -> tuple[int, bytes]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            start.wait(timeout=60)  # every thread's first request leaves at once
        answer = local.session.post(url, json=body, headers=headers, timeout=60)
        return answer.status_code, answer.content

    with ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(post, range(posts)))
    changed = requests.post(url, json={**body, "message": "another"}, headers=headers, timeout=30)
    rows = world.scalar(
        select(func.count()).where(Notification.message.in_(["idempotent alert", "another"]))
    )
    first = answers[0]
    identical = sum(1 for answer in answers if answer == first)
    kinds = Counter(status for status, _ in answers)
    return [
        Figure(f"{posts:,} concurrent POSTs, one Idempotency-Key: rows", "1", f"{rows}", rows == 1),
        Figure(
            "one Idempotency-Key: replays identical",
            f"{posts:,} of {posts:,}, 202",
            f"{identical:,} of {posts:,} ({', '.join(f'{n}× {s}' for s, n in kinds.items())})",
            identical == posts and first[0] == 202,
        ),
        Figure(
            "one Idempotency-Key: changed body",
            "422",
            f"{changed.status_code}",
            changed.status_code == 422,
        ),
    ]


# --- 2. the web process killed mid-load --------------------------------------------------------


def web_kill(world: World, key: str, connection_ids: list[int]) -> list[Figure]:
    clients = knob("WEB_CLIENTS", 20)
    kills = knob("WEB_KILLS", 2)
    posters = Posters(world, key, connection_ids, clients, "web")
    try:
        for _ in range(kills):
            before = len(posters.accepted())
            wait_until(lambda b=before: len(posters.accepted()) >= b + 300, 120, "300 accepted")
            world.web.kill()
            world.web.start()
        before = len(posters.accepted())
        wait_until(lambda: len(posters.accepted()) >= before + 300, 120, "300 more accepted")
    finally:
        posters.stop()
    accepted = posters.accepted()
    wait_until(lambda: drained(world, list(accepted)), 120, "the web-kill queue to drain")
    never_sent, undelivered = lost(world, accepted)
    statuses = posters.statuses()
    cut = statuses[(0, "no answer")]
    others = {k: n for k, n in statuses.items() if k[0] not in (0, 202)}
    return [
        Figure(
            f"web process kill -9 ×{kills} mid-load ({clients} clients): accepted (202) lost",
            "0",
            f"{never_sent} of {len(accepted):,} ({undelivered} rows not delivered; "
            f"{cut} requests without an answer; other answers: {others or 'none'})",
            never_sent == undelivered == 0 and not others,
        )
    ]


# --- 3. PostgreSQL restarted mid-run -----------------------------------------------------------


def restarts(world: World, key: str, connection_ids: list[int]) -> list[Figure]:
    count = knob("RESTARTS", 3)
    down_seconds = knob("DOWN_SECONDS", 3.0)
    cluster = world.run.cluster
    # A steady load the workers keep up with (at most 40 posts a second), so that "drained"
    # measures the restart, not a backlog the posters built up.
    posters = Posters(world, key, connection_ids, 8, "restart", pause=0.2)
    health_while_down: Counter = Counter()
    windows: list[tuple[float, float]] = []
    drains: list[float] = []
    bursts: dict[int, str] = {}
    try:
        for number in range(count):
            before = len(posters.accepted())
            wait_until(lambda b=before: len(posters.accepted()) >= b + 100, 120, "100 accepted")
            # And a burst queued at once, so that the workers are mid-call when it stops.
            burst = {
                f"burst {number}-{n}": connection_ids[n % len(connection_ids)] for n in range(500)
            }
            sent = world.fake.answered[200]
            bursts.update({i: m for m, i in world.queue(burst).items()})
            wait_until(lambda s=sent: world.fake.answered[200] >= s + 100, 120, "the burst")
            accepted_before = [*posters.accepted(), *bursts]
            stopped = time.time()
            cluster.stop("fast")
            while time.time() - stopped < down_seconds:
                try:
                    health = requests.get(f"{world.web.url}/healthz", timeout=5).status_code
                except requests.RequestException:
                    health = 0
                health_while_down[health] += 1
                time.sleep(0.25)
            cluster.start()
            windows.append((stopped, time.time()))
            drains.append(
                wait_until(lambda a=accepted_before: drained(world, a), 300, "the restart drain")
            )
    finally:
        posters.stop()
        if not cluster.is_up():
            cluster.start()
    accepted = {**posters.accepted(), **bursts}
    wait_until(lambda: drained(world, list(accepted)), 120, "the restart queue to drain")
    never_sent, undelivered = lost(world, accepted)
    delivered = world.fake.delivered()
    duplicates = sum(
        delivered[message] - 1 for message in accepted.values() if delivered[message] > 1
    )
    while_down = Counter()
    for stopped, started in windows:
        while_down.update(posters.statuses(stopped, started))
    everywhere = posters.statuses()
    errors_500 = sum(n for (status, _), n in everywhere.items() if status >= 500 and status != 503)
    bad_503 = sum(
        n
        for (status, code), n in everywhere.items()
        if status == 503 and code != "service_unavailable"
    )
    down_503 = sum(n for (status, _), n in while_down.items() if status == 503)
    others = {k: n for k, n in everywhere.items() if k[0] not in (202, 503)}
    return [
        Figure(
            f"PostgreSQL restarted ×{count} mid-run: accepted lost",
            "0",
            f"{never_sent} of {len(accepted):,}, {len(bursts):,} of them queued in bursts "
            f"({undelivered} rows not delivered; {duplicates} sent twice)",
            never_sent == undelivered == 0,
        ),
        Figure(
            "PostgreSQL down: API answers",
            "503, never 500",
            f"{down_503} × 503 while down, {errors_500} × 5xx other than 503 in the run; "
            f"/healthz {dict(health_while_down)}; other answers: {others or 'none'}",
            down_503 > 0
            and errors_500 == 0
            and bad_503 == 0
            and not others
            and set(health_while_down) == {503},
        ),
        Figure(
            "PostgreSQL back: queue drained after",
            f"≤ {DRAIN_TARGET} s",
            " / ".join(f"{d:.1f} s" for d in drains),
            max(drains) <= DRAIN_TARGET,
        ),
    ]


def run(chaos: Run) -> list[Figure]:
    with World(chaos, "web", FakeNotify(limit=10**9)) as world:
        connection_ids = list(world.connections(20, "web"))
        key = world.api_key()
        world.start_web(workers=knob("WEB_PROCESSES", 4), threads=4)
        world.start_workers(2, 4)
        figures = idempotency(world, key, connection_ids[0])
        figures += web_kill(world, key, connection_ids)
        figures += restarts(world, key, connection_ids)
        world.stop_workers()
        return figures
