"""What the admin's lists share: counts over notifications that stop at a cap, and an owner
as a list names them.

Counts over notifications stop at :data:`COUNT_CAP` (``capped`` says so, and the pages show
"10,000+"): a day of failures is counted exactly, a backlog of a million queued rows is not
counted at every page view.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, literal_column, select

from notify_site.extensions import db
from notify_site.models import Notification

# Counting stops here: beyond it the pages say "10,000+" rather than scan a huge backlog.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class Owner:
    """Whose a row is, as the admin's lists show it."""

    id: int
    username: str


@dataclass(frozen=True)
class CappedCount:
    """A count that stopped at :data:`COUNT_CAP`; ``capped`` means "at least ``count``"."""

    count: int
    capped: bool = False

    def __add__(self, other: CappedCount) -> CappedCount:
        return CappedCount(self.count + other.count, self.capped or other.capped)


def capped_count_query(conditions: tuple):
    """A scalar subquery: how many notifications match, reading at most COUNT_CAP + 1 entries."""
    limited = (
        select(literal_column("1"))
        .select_from(Notification)
        .where(*conditions)
        .limit(COUNT_CAP + 1)
        .subquery()
    )
    return select(func.count()).select_from(limited).scalar_subquery()


def capped(found: int | None) -> CappedCount:
    """What :func:`capped_count_query` found, as a :class:`CappedCount`."""
    found = found or 0
    return CappedCount(min(found, COUNT_CAP), found > COUNT_CAP)


def capped_count(conditions: tuple) -> CappedCount:
    """How many notifications match, counting at most :data:`COUNT_CAP` + 1 index entries."""
    return capped(db.session.scalar(select(capped_count_query(conditions))))
