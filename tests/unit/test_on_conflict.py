"""notify_site/on_conflict.py: each database's INSERT … ON CONFLICT, and no guess for others."""

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from notify_site.models import IdempotencyRecord
from notify_site.on_conflict import insert_for


@pytest.mark.parametrize(("name", "dialect"), [("postgresql", postgresql), ("sqlite", sqlite)])
def test_each_database_gets_its_own_spelling(name, dialect):
    statement = insert_for(name, IdempotencyRecord).on_conflict_do_nothing()
    assert isinstance(statement, dialect.Insert)
    assert "ON CONFLICT DO NOTHING" in str(statement.compile(dialect=dialect.dialect()))


def test_another_database_is_refused_not_given_sqlites():
    with pytest.raises(ValueError, match="mysql"):
        insert_for("mysql", IdempotencyRecord)
