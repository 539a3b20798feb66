"""The admin's list of every connection, lowest calls remaining first (SPEC 4.5).

``ix_connections_rate_remaining`` (rate_remaining, id) gives "lowest remaining first, unknown
last" on both databases (PostgreSQL sorts NULLs last in an ascending index; SQLite walks the
index's non-NULL part, then its NULL part); ``ix_connections_status_remaining`` the same
within one status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, nulls_last, select

from notify_site.extensions import db
from notify_site.models import Connection, ConnectionStatus, User
from notify_site.services.admin.common import Owner
from notify_site.services.paging import Page, page_offset

CONNECTIONS_PER_PAGE = 50
CONNECTION_STATUSES = (
    ConnectionStatus.ACTIVE,
    ConnectionStatus.UNREACHABLE,
    ConnectionStatus.REVOKED,
    ConnectionStatus.ERROR,
)


@dataclass(frozen=True)
class AdminConnection:
    """A connection as the admin list shows it (never its token).

    Its attributes are named as :class:`~notify_site.models.Connection`'s, so the one
    connection serialiser (:mod:`notify_site.serialisers`) reads either.
    """

    id: int
    owner: Owner
    label: str
    target_name: str | None
    target_type: str | None
    status: str
    status_detail: str | None
    status_detail_code: str | None
    status_detail_params: dict | None
    rate_limit: int | None
    rate_remaining: int | None
    rate_image_limit: int | None
    rate_image_remaining: int | None
    rate_reset_at: datetime | None
    rate_checked_at: datetime | None
    rate_checked_by: str | None


_CONNECTION_COLUMNS = (
    Connection.id,
    Connection.owner_id,
    User.username,
    Connection.label,
    Connection.target_name,
    Connection.target_type,
    Connection.status,
    Connection.status_detail,
    Connection.status_detail_code,
    Connection.status_detail_params,
    Connection.rate_limit,
    Connection.rate_remaining,
    Connection.rate_image_limit,
    Connection.rate_image_remaining,
    Connection.rate_reset_at,
    Connection.rate_checked_at,
    Connection.rate_checked_by,
)


def _admin_connection(row) -> AdminConnection:
    connection_id, owner_id, username, *rest = row
    return AdminConnection(connection_id, Owner(owner_id, username), *rest)


def list_connections(
    *,
    username: str | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = CONNECTIONS_PER_PAGE,
) -> Page[AdminConnection]:
    """Every connection, lowest calls remaining first and never-checked ones last, by id.

    ``username`` keeps one owner's connections (an unknown name matches nothing); ``status``
    keeps one of :data:`CONNECTION_STATUSES`. The total is exact: 10,000 rows count quickly.
    """
    conditions = []
    if username:
        owner_id = select(User.id).where(User.username == username).scalar_subquery()
        conditions.append(Connection.owner_id == owner_id)
    if status:
        conditions.append(Connection.status == status)
    order = (nulls_last(Connection.rate_remaining.asc()), Connection.id.asc())
    total = db.session.scalar(select(func.count()).select_from(Connection).where(*conditions))
    # A deferred join: the page's ids come from the index alone (the rows skipped by OFFSET
    # are never read), then only those 50 rows are read and joined to their owners.
    page_ids = (
        select(Connection.id)
        .where(*conditions)
        .order_by(*order)
        .limit(per_page)
        .offset(page_offset(page, per_page))
    )
    rows = db.session.execute(
        select(*_CONNECTION_COLUMNS)
        .join(User, User.id == Connection.owner_id)
        .where(Connection.id.in_(page_ids.scalar_subquery()))
        .order_by(*order)
    ).all()
    return Page(
        items=[_admin_connection(row) for row in rows],
        page=page,
        per_page=per_page,
        total=total or 0,
    )
