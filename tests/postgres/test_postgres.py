"""The same schema and the same connect rules on PostgreSQL."""

from __future__ import annotations

from notify_site import create_app
from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import Connection
from notify_site.services.connections import connection_context
from tests.factories import create_connection, create_user
from tests.migration_checks import (
    assert_ledger_totals_are_filled,
    assert_migrations_match_models,
    assert_old_texts_get_their_codes,
)


def test_migrations_match_models_on_postgresql(app_config):
    assert_migrations_match_models(create_app(app_config))


def test_existing_error_texts_get_their_codes_on_postgresql(app_config):
    assert_old_texts_get_their_codes(create_app(app_config))


def test_the_ledger_totals_start_from_the_ledger_on_postgresql(app_config):
    assert_ledger_totals_are_filled(create_app(app_config), "5a7c0e9d2b14")


def test_connection_round_trip_keeps_aware_times_and_ciphertext(app):
    with app.app_context():
        owner = create_user("alice")
        connection_id = create_connection(owner, token="pg-token").id
        db.session.expire_all()
        connection = db.session.get(Connection, connection_id)
        assert connection.created_at.tzinfo is not None
        assert (
            keyring().decrypt(
                connection.token_ciphertext, context=connection_context(connection_id)
            )
            == "pg-token"
        )
        assert db.engine.dialect.name == "postgresql"
