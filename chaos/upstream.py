"""Upstream chaos at the Notify server, and a token revoked (401) in the middle of the run.

The fake Notify server answers 20 % of calls 500, holds 5 % past the client's timeout, and
answers 10 % 429 with ``Remaining: 0`` (the window is spent until its Reset); its windows admit
``CHAOS_UPSTREAM_LIMIT`` calls per ``CHAOS_UPSTREAM_WINDOW`` seconds per token. Worker
processes deliver ``CHAOS_UPSTREAM_NOTIFICATIONS`` rows over 40 connections, plus a backlog on
one more connection whose token the server revokes once it has delivered a few of them.

Retries come back within seconds here (base 0.5 s, cap 4 s) and a row has
``CHAOS_UPSTREAM_MAX_ATTEMPTS`` (12) attempts: with a quarter of all calls failing, the
default 8 would give up on 0.25⁸ ≈ 1.5·10⁻⁵ of the rows (a few in 10,000 rows) — a property of
the attempt budget, not of delivery, which is what is measured here.

Figures, from the calls the server recorded and the rows' own history:

- 100 % delivered;
- 429s spend no attempt: every row's ``attempts`` equals the calls the server received for it
  minus the ones it answered 429;
- 0 calls between an answer with ``Remaining: 0`` and that window's Reset;
- at most the limit of calls per token per window (calls that reached the limiter);
- after the first 401, 0 further calls with that token; its backlog failed as "connection
  revoked" within one poll interval of that 401.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

from sqlalchemy import select

from chaos.harness import DELIVERED, TERMINAL, Figure, Run, World, knob, wait_until
from notify_site.models import Notification, NotificationStatus
from notify_site.services.retry import CONNECTION_REVOKED
from tests.fakes.notify_api import TIMEOUT, FakeNotify

NOTIFY_TIMEOUT = 2  # seconds; a stalled call is held half a second longer
POLL_INTERVAL = 1.0  # the worker's default WORKER_POLL_INTERVAL


def run(chaos: Run) -> list[Figure]:
    total = knob("UPSTREAM_NOTIFICATIONS", 2000)
    backlog = knob("UPSTREAM_BACKLOG", 100)
    limit = knob("UPSTREAM_LIMIT", 10)
    window = knob("UPSTREAM_WINDOW", 2)
    fake = FakeNotify(
        limit=limit,
        window_seconds=window,
        server_error_rate=0.20,
        timeout_rate=0.05,
        rate_limited_rate=0.10,
        stall_seconds=NOTIFY_TIMEOUT + 0.5,
    )
    with World(
        chaos,
        "upstream",
        fake,
        NOTIFY_TIMEOUT=NOTIFY_TIMEOUT,
        DELIVERY_RETRY_BASE=0.5,
        DELIVERY_RETRY_CAP=4,
        DELIVERY_MAX_ATTEMPTS=knob("UPSTREAM_MAX_ATTEMPTS", 12),
        WORKER_POLL_INTERVAL=POLL_INTERVAL,
    ) as world:
        tokens = world.connections(40, "up")
        [(revoked_id, revoked_token)] = world.connections(1, "doomed").items()
        connection_ids = list(tokens)
        messages = {f"up {n}": connection_ids[n % len(connection_ids)] for n in range(total)}
        doomed = {f"doomed {n}": revoked_id for n in range(backlog)}
        ids = world.queue({**messages, **doomed})
        world.start_workers(4, 4)

        def doomed_delivered() -> int:
            return sum(
                1 for c in fake.notify_calls() if c.token == revoked_token and c.status == 200
            )

        wait_until(lambda: doomed_delivered() >= 5, 300, "the doomed connection's first 5")
        fake.revoke(revoked_token)
        wait_until(
            lambda: world.count(TERMINAL) == total + backlog, 600, "every row terminal", poll=0.5
        )
        world.stop_workers()

    calls = fake.notify_calls()
    answered = Counter(call.status for call in calls)
    by_message: dict[str, list] = defaultdict(list)
    for call in calls:
        by_message[call.message].append(call)

    # 100 % delivered
    delivered = fake.delivered()
    rows = dict(
        world.rows(
            select(Notification.message, Notification.status).where(
                Notification.id.in_([ids[m] for m in messages])
            )
        )
    )
    delivered_rows = sum(1 for status in rows.values() if status == NotificationStatus.DELIVERED)
    reached = sum(1 for message in messages if delivered[message] > 0)

    # 429s spend no attempt
    attempts = dict(
        world.rows(
            select(Notification.message, Notification.attempts).where(
                Notification.id.in_(list(ids.values()))
            )
        )
    )
    mismatched = [
        message
        for message in messages
        if attempts[message] != sum(1 for call in by_message[message] if call.status != 429)
    ]

    # windows
    spent = sum(1 for call in calls if call.into_spent_window)
    busiest = max((max(used) for used in fake.windows().values() if used), default=0)
    full = sum(used.count(limit) for used in fake.windows().values())

    # 401
    first_401 = min(
        (call.at for call in calls if call.token == revoked_token and call.status == 401),
        default=None,
    )
    after_401 = (
        sum(1 for call in calls if call.token == revoked_token and call.at > first_401)
        if first_401 is not None
        else -1
    )
    doomed_rows = world.rows(
        select(Notification.status, Notification.last_error, Notification.finished_at).where(
            Notification.id.in_([ids[m] for m in doomed])
        )
    )
    failed = [row for row in doomed_rows if row.status == NotificationStatus.FAILED]
    failed_right = all(row.last_error == CONNECTION_REVOKED.text for row in failed)
    delivered_doomed = sum(1 for row in doomed_rows if row.status == NotificationStatus.DELIVERED)
    if first_401 is not None and failed:
        revoked_at = datetime.fromtimestamp(first_401, UTC)
        failed_within = max((row.finished_at - revoked_at).total_seconds() for row in failed)
    else:
        failed_within = float("inf")

    mix = (
        f"{len(calls):,} calls: {answered[200]:,} × 200, {answered[500]:,} × 500, "
        f"{answered[TIMEOUT]:,} stalled, {answered[429]:,} × 429"
    )
    return [
        Figure(
            "upstream chaos (20 % 5xx, 5 % timeouts, 10 % 429): delivered",
            "100 %",
            f"{delivered_rows:,} of {total:,} rows, {reached:,} at the server ({mix})",
            delivered_rows == reached == total and world.count(DELIVERED) >= total,
        ),
        Figure(
            "upstream chaos: 429s spend no attempt",
            "attempts = calls − 429s, every row",
            f"{total - len(mismatched):,} of {total:,} rows ({answered[429]:,} × 429)",
            not mismatched,
        ),
        Figure(
            "upstream chaos: calls between Remaining = 0 and Reset",
            "0",
            f"{spent}",
            spent == 0,
        ),
        Figure(
            "upstream chaos: calls per token per window",
            f"≤ {limit} per {window} s",
            f"max {busiest} ({full} windows filled to the limit)",
            busiest <= limit,
        ),
        Figure(
            "401 mid-run: further calls with that token",
            "0",
            f"{after_401}" if first_401 is not None else "no 401 seen",
            after_401 == 0,
        ),
        Figure(
            "401 mid-run: its backlog failed as “connection revoked”",
            f"within one poll ({POLL_INTERVAL:g} s)",
            f"{len(failed)} failed {failed_within:.3f} s after the 401 "
            f"({delivered_doomed} delivered before it)",
            failed_right
            and len(failed) + delivered_doomed == backlog
            and len(failed) > 0
            and failed_within <= POLL_INTERVAL,
        ),
    ]
