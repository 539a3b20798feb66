"""LINE units with and without packing (issue 15), against the fake Messaging API.

1,000 Notify calls to one 10-member LINE group arrive in bursts (5 at once, one thread each,
every ``--interval`` seconds)
at the relay's ``/relay/api/notify``; a worker thread runs the relay's push job
(``process_due_pushes``) every ``--poll`` seconds, as ``flask worker`` would, and pushes to the
fake Messaging API of the tests (``tests/fakes/line_api.py``, held to LINE's OpenAPI
documents), which counts units per recipient as LINE does and takes ``--line-latency`` ms
(50) to answer a push, as a LINE far away does. Run twice, packing on and off
(``RELAY_LINE_PACKING``), with a channel budget of ``--budget`` units, and prints:

* units spent per delivered notification (target: ≥ 3× fewer with packing); with a budget
  of 4,000 units the run without packing is refused after 400 notifications, so the totals
  differ by design;
* p50 / p95 from the call to ``/api/notify`` to the fake receiving the push that carries it
  (target: with / without ≤ 1.1, no digest window);
* units past the budget (target: 0 in both);
* and a third run with a ``--digest`` window (0.5 s; 0 skips it): each push waits that long to
  gather the next ones, trading latency for units.

In process (the Flask test client) and on SQLite, so that it runs anywhere in about
``2 × notifications / burst × interval`` seconds. Usage::

    .venv/bin/python -m bench.quota [--notifications 1000] [--burst 5] [--interval 1.0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.common import report

GROUP = "C" + "b" * 32
TOKEN = "bench-quota-token"


def run_once(args, packing: bool, digest: float = 0.0) -> dict:
    from notify_site import create_app
    from notify_site.db_types import utcnow
    from notify_site.extensions import db
    from notify_site.relay.budgets import set_budget
    from notify_site.relay.clients import register_client
    from notify_site.relay.line.channel import current_settings
    from notify_site.relay.line.push import process_due_pushes, push_policy
    from notify_site.relay.models import RelayChat
    from tests.conftest import init_database, make_test_config
    from tests.factories import create_relay_token
    from tests.fakes.line_api import FakeLineServer, channel_config

    fake = FakeLineServer()
    fake.state.quota = None
    fake.state.push_latency = args.line_latency / 1000
    fake.state.member_counts[GROUP] = args.members
    with tempfile.TemporaryDirectory(prefix="notify-bench-quota-") as path:
        config = make_test_config(
            Path(path),
            RELAY_LINE_PACKING=packing,
            RELAY_LINE_DIGEST_SECONDS=digest,
            RELAY_RATE_LIMIT=10**8,
            **channel_config(fake, "https://relay.example/relay"),
        )
        app = create_app(config)
        init_database(app)
        with app.app_context():
            client_id, _ = register_client("Bench", "https://bench.example/cb")
            from notify_site.relay.clients import find_client

            chat = RelayChat(kind="GROUP", name="Bench", line_id=GROUP, source_type="group")
            db.session.add(chat)
            db.session.commit()
            create_relay_token(find_client(client_id).id, chat.id, TOKEN, person_id=1)
            set_budget("channel", 0, args.budget, now=utcnow())
            db.session.commit()

        stop = threading.Event()

        def worker() -> None:
            while not stop.is_set():
                with app.app_context():
                    process_due_pushes(current_settings(), push_policy(app.config))
                    db.session.remove()
                stop.wait(args.poll)

        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        sent_at: dict[int, float] = {}
        refused = 0
        headers = {"Authorization": f"Bearer {TOKEN}"}
        n = 0
        lock = threading.Lock()

        def post(index: int) -> None:
            nonlocal refused
            started = time.monotonic()
            answer = app.test_client().post(
                "/relay/api/notify", headers=headers, data={"message": f"#{index}"}
            )
            with lock:
                if answer.status_code == 200:
                    sent_at[index] = started
                elif answer.status_code == 429:
                    refused += 1

        while n < args.notifications:
            burst_start = time.monotonic()
            # The burst arrives at once: one thread per call, as separate clients would.
            burst = [
                threading.Thread(target=post, args=(index,))
                for index in range(n, min(n + args.burst, args.notifications))
            ]
            for thread_ in burst:
                thread_.start()
            for thread_ in burst:
                thread_.join()
            n += len(burst)
            time.sleep(max(0.0, args.interval - (time.monotonic() - burst_start)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            delivered = sum(len(c.json["messages"]) for c in fake.state.pushes if c.status == 200)
            if delivered >= len(sent_at):
                break
            time.sleep(0.1)
        stop.set()
        thread.join()
        fake.stop()
    latencies = []
    for call in fake.state.pushes:
        if call.status != 200:
            continue
        for message in call.json["messages"]:
            index = int(message["text"].rsplit("#", 1)[1])
            latencies.append(call.at - sent_at[index])
    latencies.sort()
    return {
        "accepted": len(sent_at),
        "refused": refused,
        "pushes": len(fake.state.pushes),
        "units": fake.state.consumption,
        "past_budget": max(0, fake.state.consumption - args.budget),
        "p50": statistics.median(latencies),
        "p95": latencies[int(len(latencies) * 0.95) - 1],
        "delivered": len(latencies),
    }


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the fake's access log
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--notifications", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--budget", type=int, default=4000)
    parser.add_argument(
        "--digest", type=float, default=0.5, help="a third run's digest window (s); 0: none"
    )
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--line-latency", type=float, default=50.0, help="ms per push at LINE")
    args = parser.parse_args()
    without = run_once(args, packing=False)
    packed = run_once(args, packing=True)
    runs = [("without packing", without), ("with packing", packed)]
    if args.digest:
        digest = run_once(args, packing=True, digest=args.digest)
        runs.append((f"with packing and a {args.digest:g} s digest window", digest))
    for name, result in runs:
        print(
            f"{name}: {result['accepted']} accepted, {result['refused']} refused (budget), "
            f"{result['delivered']} delivered in {result['pushes']} pushes, "
            f"{result['units']} units, {result['past_budget']} past the budget, "
            f"p50 {result['p50'] * 1000:.0f} ms, p95 {result['p95'] * 1000:.0f} ms"
        )
    per_notification = [r["units"] / max(r["delivered"], 1) for r in (without, packed)]
    report(
        "LINE units and latency, with / without packing",
        [
            (
                "units per delivered notification, without / with",
                per_notification[0] / per_notification[1],
                "≥ 3",
            ),
            ("p50 latency, with / without", packed["p50"] / without["p50"], "≤ 1.1"),
            ("p95 latency, with / without", packed["p95"] / without["p95"], "≤ 1.1"),
        ],
    )
    if args.digest:
        per_digest = digest["units"] / max(digest["delivered"], 1)
        report(
            f"With a {args.digest:g} s digest window (a latency traded for units)",
            [
                (
                    "units per delivered notification, without / digest",
                    per_notification[0] / per_digest,
                    "",
                ),
                ("p50 latency, digest / without", digest["p50"] / without["p50"], ""),
            ],
        )


if __name__ == "__main__":
    main()
