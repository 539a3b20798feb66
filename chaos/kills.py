"""``kill -9`` of delivery workers at random moments of a 10,000-notification run.

Worker processes (`flask --app wsgi worker`) deliver ``CHAOS_KILL_NOTIFICATIONS`` rows queued
at once over ``CHAOS_KILL_CONNECTIONS`` connections to the fake Notify server. At
``CHAOS_KILLS`` random moments (between 5 % and 90 % delivered, plus up to 0.3 s) one of them,
chosen at random, gets SIGKILL and is started again at once.

Figures, from what the server received and the rows' own history:

- lost: messages the server never accepted (and rows not delivered): 0;
- duplicates: messages accepted more than once, at most one per kill. A duplicate needs a
  kill between the server's 200 and the commit, and each worker here has one thread, so one
  call in flight (``CHAOS_KILL_THREADS`` raises that, and the bound with it: one per call in
  flight). The calls the kills cut off are counted from the attempt history (interrupted);
- every row terminal within lease + 60 s: the queue drained that soon after the last kill,
  and every row whose call a kill cut off was terminal that soon after that call began.
"""

from __future__ import annotations

import random
import time

from sqlalchemy import select

from chaos.harness import DELIVERED, TERMINAL, Figure, Run, World, knob, wait_until
from notify_site.models import DeliveryAttempt, Notification
from notify_site.services.attempts import INTERRUPTED
from tests.fakes.notify_api import FakeNotify


def run(chaos: Run) -> list[Figure]:
    total = knob("KILL_NOTIFICATIONS", 10_000)
    kills = knob("KILLS", 20)
    worker_count = knob("KILL_WORKERS", 4)
    threads = knob("KILL_THREADS", 1)
    fake = FakeNotify(limit=10**9)
    with World(chaos, "kills", fake) as world:
        lease = world.lease
        connection_ids = list(world.connections(knob("KILL_CONNECTIONS", 100), "kill"))
        messages = {f"kill {n}": connection_ids[n % len(connection_ids)] for n in range(total)}
        world.queue(messages)
        workers = world.start_workers(worker_count, threads)
        rng = random.Random()
        moments = sorted(rng.uniform(0.05, 0.9) for _ in range(kills))
        killed_at: list[float] = []
        for moment in moments:
            wait_until(
                lambda m=moment: fake.answered[200] >= m * total, 600, f"{moment:.0%} delivered"
            )
            time.sleep(rng.uniform(0, 0.3))
            victim = rng.choice(workers)
            victim.kill()
            killed_at.append(time.time())
            victim.start()
        mid_run = world.count(DELIVERED) < total
        drained = wait_until(lambda: world.count(TERMINAL) == total, lease + 60 + 240, "the drain")
        clean_stops = world.stop_workers()

    delivered = fake.delivered()
    lost = sum(1 for message in messages if delivered[message] == 0)
    undelivered_rows = total - world.count(DELIVERED)
    duplicates = sum(count - 1 for count in delivered.values() if count > 1)
    cut_off = world.rows(
        select(DeliveryAttempt.started_at, Notification.finished_at)
        .join(Notification, Notification.id == DeliveryAttempt.notification_id)
        .where(DeliveryAttempt.outcome == INTERRUPTED)
    )
    slowest_cut_off = max(
        ((finished - started).total_seconds() for started, finished in cut_off), default=0.0
    )
    bound = lease + 60
    calls_in_flight = len(killed_at) * threads
    return [
        Figure(
            f"kill -9 ×{len(killed_at)} ({worker_count} workers × {threads} thread, {total:,} "
            "rows): lost",
            "0",
            f"{lost} ({undelivered_rows} rows not delivered)"
            + ("" if mid_run else "; the kills came after the run: nothing proved"),
            lost == undelivered_rows == 0 and mid_run and all(s == 0 for s in clean_stops),
        ),
        Figure(
            "kill -9: duplicates",
            f"≤ {calls_in_flight} (1 per call in flight)",
            f"{duplicates} ({len(cut_off)} calls cut off)",
            duplicates <= calls_in_flight,
        ),
        Figure(
            "kill -9: every row terminal within lease + 60 s",
            f"≤ {bound:.0f} s",
            f"drained {drained:.1f} s after the last kill; cut-off rows ≤ {slowest_cut_off:.1f} s",
            drained <= bound and slowest_cut_off <= bound,
        ),
    ]
