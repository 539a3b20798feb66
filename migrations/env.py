"""Alembic environment for notify_site, run through Flask-Migrate (``flask --app wsgi db ...``).

It migrates every table the app's metadata knows: the site's and the relay's. SQLite needs
"batch" mode to alter tables, so it is on for every dialect (a no-op elsewhere); on SQLite,
foreign keys are not enforced while migrating (see run_migrations_online). Logging is left
to the application: configuring it here would silence the app's loggers.
"""

from alembic import context
from flask import current_app

import notify_site.models  # noqa: F401  (the site's tables)
import notify_site.relay.models  # noqa: F401  (the relay's tables)
from notify_site.extensions import db

config = context.config


def run_migrations_offline() -> None:
    context.configure(
        url=str(db.engine.url),
        target_metadata=db.metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    def skip_empty(context_, revision, directives):
        # `flask db migrate` with no model change writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []

    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a SQLite table by copying it and dropping the old one; with
            # foreign keys enforced (the app turns them on for every connection), that DROP
            # would cascade to the rows that refer to it (a chat's messages deleted, an image
            # unlinked from its message). Off while migrating (outside a transaction, where
            # SQLite honours it), and back on before the connection returns to the pool.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            _migrate(connection, skip_empty)
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _migrate(connection, skip_empty) -> None:
    context.configure(
        connection=connection,
        target_metadata=db.metadata,
        process_revision_directives=skip_empty,
        **{
            "render_as_batch": True,
            "compare_type": True,
            **current_app.extensions["migrate"].configure_args,
        },
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
