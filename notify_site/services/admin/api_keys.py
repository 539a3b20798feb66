"""The admin's list of every API key, most recently used first, with the volume each queued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, nulls_last, select

from notify_site.extensions import db
from notify_site.models import ApiKey, Notification, User
from notify_site.services.admin.common import Owner
from notify_site.services.paging import Page, page_offset

API_KEYS_PER_PAGE = 25


@dataclass(frozen=True)
class AdminApiKey:
    """A key as the admin list shows it (never its hash): whose, when used, how much."""

    id: int
    name: str
    prefix: str
    owner: Owner
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    volume: int

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


def list_api_keys(*, page: int = 1, per_page: int = API_KEYS_PER_PAGE) -> Page[AdminApiKey]:
    """Every key, most recently used first, with how many notifications each one queued.

    The volumes are counted for the page's keys only, in one grouped query along
    ``ix_notifications_api_key_id`` (an index-only count), after the page is chosen.
    """
    total = db.session.scalar(select(func.count()).select_from(ApiKey)) or 0
    rows = db.session.execute(
        select(
            ApiKey.id,
            ApiKey.name,
            ApiKey.prefix,
            ApiKey.owner_id,
            User.username,
            ApiKey.created_at,
            ApiKey.last_used_at,
            ApiKey.revoked_at,
        )
        .join(User, User.id == ApiKey.owner_id)
        .order_by(nulls_last(ApiKey.last_used_at.desc()), ApiKey.id.desc())
        .limit(per_page)
        .offset(page_offset(page, per_page))
    ).all()
    ids = [row.id for row in rows]
    volumes: dict[int, int] = {}
    if ids:
        volumes = dict(
            db.session.execute(
                select(Notification.api_key_id, func.count())
                .where(Notification.api_key_id.in_(ids))
                .group_by(Notification.api_key_id)
            ).all()
        )
    return Page(
        items=[
            AdminApiKey(
                id=row.id,
                name=row.name,
                prefix=row.prefix,
                owner=Owner(row.owner_id, row.username),
                created_at=row.created_at,
                last_used_at=row.last_used_at,
                revoked_at=row.revoked_at,
                volume=volumes.get(row.id, 0),
            )
            for row in rows
        ],
        page=page,
        per_page=per_page,
        total=total,
    )
