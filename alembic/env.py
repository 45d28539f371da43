"""Alembic environment for the kiosk's database.

The kiosk passes its open connection in `config.attributes["connection"]`;
developers run `alembic -x db=PATH revision --autogenerate -m "..."`.
"""

from alembic import context
from sqlalchemy import Connection

from kiosk import flashlog  # noqa: F401  (registers the tables)
from kiosk.db import Base, connect


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    from pathlib import Path

    database = Path(
        context.get_x_argument(as_dictionary=True).get("db", "kiosk.sqlite3")
    )
    with connect(database).begin() as fresh:
        run(fresh)
