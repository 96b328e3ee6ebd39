"""Engine and session factories.

SQLite needs care to be safe under concurrent writers: in WAL mode a deferred transaction
that reads and then writes fails at once (SQLITE_BUSY_SNAPSHOT) if another writer committed
in between, and the busy timeout does not help. Writes therefore run in ``BEGIN IMMEDIATE``
transactions, which take the write lock up front and wait for it; reads stay deferred so
they never block writers.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tether_controlplane.wakeups import Notifier


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str) -> Engine:
    if not is_sqlite(url):
        return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see module doc).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("tether_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class Database:
    """Owns the engine; hands out read and write sessions."""

    def __init__(self, url: str, notifier: Notifier | None = None) -> None:
        self.url = url
        self.notifier = notifier or Notifier()
        self.sqlite = is_sqlite(url)
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._factory() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(tether_write=True)
            with Session(bind=conn, expire_on_commit=False) as session:
                with session.begin():
                    yield session
                # Committed: wake whoever waits on what this transaction changed.
                wake = session.info.pop("wake", None)
                if wake:
                    self.notifier.notify(*wake)

    def dispose(self) -> None:
        self.engine.dispose()


def wake_after_commit(session: Session, key: str) -> None:
    """Ask ``Database.write`` to notify ``key`` once the transaction has committed."""
    session.info.setdefault("wake", set()).add(key)
