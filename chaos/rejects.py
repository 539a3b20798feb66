"""5 % of payloads rejected with 400: each fails after one attempt, the rest barely slow down.

Each of ``CHAOS_REJECT_ROUNDS`` rounds queues two sets of ``CHAOS_REJECT_NOTIFICATIONS`` rows
at once, interleaved, each on 10 connections of its own: the baseline, which the fake Notify
server accepts in full, and a set where 5 % of the messages carry a marker it answers 400 to.
Both sets run through the same worker processes at the same moments, so the machine's load
(shared, and noisy) weighs on both alike; measured one after the other, the same work took
from 5.7 to 12.3 s on this machine. Throughput is read at the server: each set's accepted
messages per second, from the round's first call to the set's last. Target: the set with
rejects keeps ≥ 90 % of the baseline's throughput (a 400 costs its one call and nothing else:
about 95 % is expected), and every rejected row failed after exactly one call.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from chaos.harness import TERMINAL, Figure, Run, World, knob, wait_until
from notify_site.models import Notification, NotificationStatus
from tests.fakes.notify_api import FakeNotify

MARKER = "[rejected]"


def run(chaos: Run) -> list[Figure]:
    size = knob("REJECT_NOTIFICATIONS", 1500)
    rounds = knob("REJECT_ROUNDS", 2)
    fake = FakeNotify(limit=10**9, reject_marker=MARKER)
    with World(chaos, "rejects", fake) as world:
        # (accepted, seconds) per round, for the set without rejects and the set with them
        spans: dict[str, list[tuple[int, float]]] = {"baseline": [], "rejects": []}
        rejected: list[str] = []
        baseline_ids = list(world.connections(10, "base"))
        rejects_ids = list(world.connections(10, "rej"))
        world.start_workers(4, 4)
        for number in range(rounds):
            messages = {}
            for n in range(size):  # interleaved, so that neither set is served first
                messages[f"r{number} baseline {n}"] = baseline_ids[n % len(baseline_ids)]
                bad = n % 20 == 7  # 5 %, spread through the set
                message = f"r{number} rejects {n}{' ' + MARKER if bad else ''}"
                messages[message] = rejects_ids[n % len(rejects_ids)]
                if bad:
                    rejected.append(message)
            world.queue(messages)
            wait_until(
                lambda q=(number + 1) * 2 * size: world.count(TERMINAL) == q,
                300,
                f"round {number}",
                poll=0.2,
            )
            calls = [c for c in fake.notify_calls() if c.message.startswith(f"r{number} ")]
            began = min(c.at for c in calls)
            for kind in spans:
                mine = [c for c in calls if c.message.startswith(f"r{number} {kind} ")]
                accepted = sum(1 for c in mine if c.status == 200)
                spans[kind].append((accepted, max(c.at for c in mine) - began))
        world.stop_workers()

    def throughput(kind: str) -> float:
        return sum(n for n, _ in spans[kind]) / sum(seconds for _, seconds in spans[kind])

    ratio = throughput("rejects") / throughput("baseline")
    calls = Counter(c.message for c in fake.notify_calls() if MARKER in c.message)
    rows = world.rows(
        select(Notification.status, Notification.attempts, Notification.last_status_code).where(
            Notification.message.in_(rejected)
        )
    )
    once = sum(
        1
        for row in rows
        if (row.status, row.attempts, row.last_status_code) == (NotificationStatus.FAILED, 1, 400)
    )
    single_call = sum(1 for message in rejected if calls[message] == 1)
    return [
        Figure(
            "5 % payloads rejected with 400: failed after 1 attempt",
            f"{len(rejected)} of {len(rejected)}",
            f"{once} of {len(rejected)} ({single_call} called once)",
            once == single_call == len(rejected),
        ),
        Figure(
            "5 % payloads rejected: throughput of the rest",
            "≥ 0.90 × baseline",
            f"{ratio:.2f} ({throughput('rejects'):.0f}/s against {throughput('baseline'):.0f}/s "
            "in the same rounds)",
            ratio >= 0.90,
        ),
    ]
