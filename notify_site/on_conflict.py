"""``INSERT … ON CONFLICT``, spelled for the database at hand.

SQLAlchemy's generic ``insert()`` has no ``ON CONFLICT``; the SQLite and PostgreSQL dialects'
inserts both have it, with the same methods (``on_conflict_do_nothing``,
``on_conflict_do_update``, ``excluded``). The project runs on those two databases only, so
any other is refused here rather than given one of them by default.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from notify_site.extensions import db

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_for(dialect_name: str, table: Any) -> Any:
    """The ``INSERT`` of ``table`` (a table or a model) in ``dialect_name``'s spelling."""
    try:
        return _INSERTS[dialect_name](table)
    except KeyError:
        raise ValueError(f"no INSERT … ON CONFLICT for the {dialect_name!r} database") from None


def dialect_insert(model: Any) -> Any:
    """:func:`insert_for` the database of the app's session."""
    return insert_for(db.session.get_bind().dialect.name, model)
