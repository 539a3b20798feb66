"""`make chaos`: prove the delivery figures of docs/reliability.md on PostgreSQL, in one command.

Runs every scenario against a throwaway PostgreSQL cluster of its own (chaos/cluster.py) and a
fault-injecting Notify server (tests/fakes/notify_api.py), prints each figure as a table —
figure, target, measured, PASS/FAIL — and exits 1 if any figure misses (2 if the run itself
could not be set up). README "Proving the reliability figures" describes each scenario.

``CHAOS_ONLY=kills,web`` runs some scenarios; ``CHAOS_<KNOB>`` variables scale them (defaults:
the figures of the table); ``CHAOS_KEEP=1`` keeps the working directory (logs) afterwards.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from chaos.cluster import Cluster
from chaos.harness import Figure, Run, free_port, quiet_logs

# In the order they run: each is a module of this package with a run(Run) -> [Figure].
SCENARIOS = ["kills", "web", "upstream", "jitter", "rejects"]


def print_table(figures: list[Figure]) -> None:
    rows = [("figure", "target", "measured", "result")]
    rows += [(f.name, f.target, f.measured, "PASS" if f.passed else "FAIL") for f in figures]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    rule = "-+-".join("-" * width for width in widths)
    for index, row in enumerate(rows):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print(rule)


def main() -> int:
    quiet_logs()
    wanted = [name for name in os.environ.get("CHAOS_ONLY", ",".join(SCENARIOS)).split(",") if name]
    unknown = set(wanted) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenarios: {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="notify-chaos-"))
    started = time.monotonic()
    figures: list[Figure] = []
    cluster = Cluster(free_port()).create()
    chaos = None
    try:
        cluster.start()
        chaos = Run(cluster, workdir)
        chaos.migrate_template()
        print(f"chaos: PostgreSQL {cluster.bindir.parent.name} on port {cluster.port}, fsync on")
        for name in wanted:
            began = time.monotonic()
            print(f"chaos: {name} ...", flush=True)
            try:
                found = importlib.import_module(f"chaos.{name}").run(chaos)
            except Exception as error:  # a scenario that cannot finish fails its row
                traceback.print_exc()
                found = [
                    Figure(f"{name}: the scenario ran to its end", "yes", repr(error)[:200], False)
                ]
            figures.extend(found)
            for figure in found:
                print(f"  {'PASS' if figure.passed else 'FAIL'} {figure.name}: {figure.measured}")
            print(f"chaos: {name} took {time.monotonic() - began:.0f} s", flush=True)
    finally:
        if chaos is not None:
            chaos.close()
        cluster.remove()
        if os.environ.get("CHAOS_KEEP"):
            print(f"chaos: logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print_table(figures)
    failed = [f for f in figures if not f.passed]
    print(
        f"\nchaos: {len(figures) - len(failed)} of {len(figures)} figures hold "
        f"({time.monotonic() - started:.0f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
