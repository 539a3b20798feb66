"""Scheduled sends (SPEC 9): recurring schedules and dated batches. Send later itself is an
option of the one send use case (:func:`notify_site.services.sending.send`, ``send_at``).

- :mod:`.recurrence` — RRULEs expanded in a time zone's wall time, and the daylight-saving
  rule (pure, no database).
- :mod:`.manage` — a person's schedules: create, read, pause, resume, delete, and their next
  occurrences.
- :mod:`.runner` — the worker job that queues due occurrences, each exactly once (a unique
  (schedule, time) key), catching up on recent ones and recording older ones as skipped.
- :mod:`.batches` — dated batches from CSV or JSON, validated all or nothing.
- :mod:`.upcoming` — what is coming: the Scheduled page, the dashboard's next 24 hours.
"""

from __future__ import annotations

from flask import Flask

from notify_site import seams


def init_app(app: Flask) -> None:
    """Run the scheduler in every worker, beside the deliveries (a worker job)."""
    from notify_site.services.schedules.runner import worker_job

    seams.add(app, seams.WORKER_JOBS, worker_job)
