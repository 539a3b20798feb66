"""How full a connection's hourly quota is, as every page draws it: one rule for "low".

The dashboard's gauges and the admin list's quota cells both ask a :class:`Gauge` for the
level of a figure (calls left of the limit, image uploads left of theirs), so a chat is "low"
on both pages at the same point: at or below :data:`LOW_FRACTION` of its limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: At or below this share of its limit a quota is low (amber on the pages).
LOW_FRACTION = 0.2


@dataclass(frozen=True)
class Gauge:
    """One quota figure of a connection, ready to draw: ``remaining`` of ``limit``."""

    remaining: int | None
    limit: int | None

    @property
    def known(self) -> bool:
        return self.remaining is not None and self.limit is not None and self.limit > 0

    @property
    def percent(self) -> float:
        """The share left, 0–100, for the arc's length (0 when unknown)."""
        if not self.known:
            return 0.0
        return round(100 * min(max(self.remaining, 0), self.limit) / self.limit, 1)

    @property
    def level(self) -> str:
        """``ok``, ``low``, ``empty`` or ``unknown``: the figure's colour."""
        if not self.known:
            return "unknown"
        if self.remaining <= 0:
            return "empty"
        return "low" if self.remaining <= self.limit * LOW_FRACTION else "ok"

    @property
    def low_mark(self) -> int | None:
        """The highest figure that is still low (a ``<meter>``'s ``low``), None when unknown."""
        return math.floor(self.limit * LOW_FRACTION) if self.known else None
