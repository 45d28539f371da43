"""The station's SQLite database: engine, sessions, and migrations at start.

SQLite runs in WAL mode with full synchronous commits: a flash record must
survive a crash or power cut the moment it is written, and records are few
enough that the fsync per commit costs nothing noticeable.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, sessionmaker

from .errors import StorageError

log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    pass


def migrations_dir() -> Path:
    """The Alembic scripts: beside the package, or inside the frozen app."""
    bundle = getattr(sys, "_MEIPASS", None)
    root = Path(bundle) if bundle else Path(__file__).resolve().parent.parent
    return root / "alembic"


def connect(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
    event.listen(engine, "connect", _configure_connection)
    return engine


def _configure_connection(connection: Any, record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration; raises StorageError on failure."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except Exception as exc:
        log.exception("database migration failed for %s", engine.url)
        raise StorageError(
            f"The station database {engine.url.database} could not be upgraded "
            f"({exc}); restore it from a backup or move it aside and restart."
        ) from exc


def open_database(path: Path) -> sessionmaker[Any]:
    """Connect, migrate, and return a session factory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = connect(path)
    upgrade(engine)
    return sessionmaker(engine, expire_on_commit=False)
