"""1,000 simultaneous failures: the retries come back spread out, not as a second wave.

The fake Notify server is down (every call answered 503) while worker processes make the
first call of ``CHAOS_SIMULTANEOUS_FAILURES`` rows over 100 connections; once every row has
failed once, the server is back. The retries follow the product's own policy — full jitter
from the default ``DELIVERY_RETRY_BASE`` (60 s), nothing overridden — and the figure is read
at the server: the arrival times of each row's second call, counted per second of the clock.
Target: < 10 % of them in any one second.

Failing 1,000 rows is not instantaneous: it takes the workers seconds (5 to 13 here), and the
retries that fall due meanwhile wait behind that wave, then go out together. With the former
15 s base that made 10.5–13.2 % in one second; ``CHAOS_JITTER_RETRY_BASE=15`` shows it again.
``CHAOS_DEBUG=1`` prints the calls per second.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict

from chaos.harness import DELIVERED, Figure, Run, World, knob, wait_until
from notify_site.models import Notification
from tests.fakes.notify_api import FakeNotify


def second_calls(fake: FakeNotify) -> int:
    return sum(1 for n in Counter(c.message for c in fake.notify_calls()).values() if n >= 2)


def run(chaos: Run) -> list[Figure]:
    total = knob("SIMULTANEOUS_FAILURES", 1000)
    fake = FakeNotify(limit=10**9, outage=True)
    settings = {}  # the product's retry policy, unless another base is asked for
    if os.environ.get("CHAOS_JITTER_RETRY_BASE"):
        settings["DELIVERY_RETRY_BASE"] = float(os.environ["CHAOS_JITTER_RETRY_BASE"])
    with World(chaos, "jitter", fake, **settings) as world:
        connection_ids = list(world.connections(100, "jit"))
        messages = {f"jitter {n}": connection_ids[n % len(connection_ids)] for n in range(total)}
        world.queue(messages)
        world.start_workers(4, 4)
        wait_until(
            lambda: world.count(Notification.attempts >= 1) == total, 300, "every first failure"
        )
        fake.outage = False
        # Every row's second call made (the figure); a row whose retry fell in the outage
        # waits for a third, up to 2 × base later, which the figure does not need.
        wait_until(lambda: second_calls(fake) == total, 300, "every retry", poll=0.5)
        delivered = world.count(DELIVERED)
        world.stop_workers()

    arrivals: dict[str, list[float]] = defaultdict(list)
    for call in fake.notify_calls():
        arrivals[call.message].append(call.at)
    firsts = [min(times) for times in arrivals.values()]
    retries = [sorted(times)[1] for times in arrivals.values() if len(times) > 1]
    per_second = Counter(math.floor(at) for at in retries)
    if os.environ.get("CHAOS_DEBUG"):
        start = math.floor(min(firsts))
        print(
            "first calls per second:",
            sorted(Counter(math.floor(a) - start for a in firsts).items()),
        )
        print("retries per second:", sorted((s - start, n) for s, n in per_second.items()))
    busiest = max(per_second.values(), default=total)
    share = busiest / total
    return [
        Figure(
            f"{total:,} simultaneous failures: retries in any one second",
            "< 10 %",
            f"{share:.1%} (busiest second {busiest} of {len(retries):,} retries; first "
            f"failures within {max(firsts) - min(firsts):.1f} s, retries over "
            f"{max(retries) - min(retries):.1f} s; {delivered:,} delivered by then)",
            share < 0.10 and len(retries) == total,
        )
    ]
