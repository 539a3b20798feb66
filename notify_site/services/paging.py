"""One page of a list: what every paginated service returns (the admin's lists, the accounts
list, the connections an API key sees), and the two queries every page needs.

A page is chosen by number (``LIMIT``/``OFFSET`` along an index the service names); its
``total`` is counted separately. When a list's count stops at a cap (see
:mod:`notify_site.services.admin.common`), ``total_capped`` says ``total`` is a lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select

from notify_site.extensions import db

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list. When ``total_capped``, ``total`` is a lower bound."""

    items: list[T]
    page: int
    per_page: int
    total: int
    total_capped: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        if self.total_capped and len(self.items) == self.per_page:
            return True
        return self.page < self.pages


def page_offset(page: int, per_page: int) -> int:
    """How many rows the pages before ``page`` hold (page numbers start at 1)."""
    return (max(page, 1) - 1) * per_page


def count_rows(query: Select) -> int:
    """How many rows ``query`` selects (ordering and paging are not applied yet)."""
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
