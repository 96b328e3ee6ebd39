"""The Dagster instance a run worker executes one run on.

It is Dagster's ephemeral instance (run and event storage in memory, the default IO
manager's files in a folder that outlives the run), with two differences: its event log
keeps one database connection for the run, and both storages are stamped with their schema
version from migrations read once per process.

Dagster's ``InMemoryEventLogStorage`` opens a connection, and runs two PRAGMAs on it, for
every event it stores; a run stores six events per op, so the 100-op chain of
bench/bench_dagster.py spent about 90 ms of its 420 ms in connecting (measured: 418 ms per
``execute_in_process`` with Dagster's instance, 327 ms with this one, medians of 7 in one
warm process). Every event is still stored, in the same in-memory SQLite database, and read
back as before.

The connection is used from more than one thread (the run's, and the cancel watcher's
``report_run_canceling``), always under the storage's own lock: SQLite's same-thread check
is off for it, as its serialized mode allows.

Making an instance took 26 ms, 20 of them reading Dagster's ~90 migration files twice to
stamp two empty in-memory databases; with the migrations read once it takes 6 ms.

Dagster internals used: ``InMemoryEventLogStorage`` and ``InMemoryRunStorage`` (what their
``__init__`` sets up, the event log's ``_connect`` and ``_db_lock``), the schema metadata
and alembic folders of both, and the ``DagsterInstance`` constructor with the parts
``DagsterInstance.ephemeral`` gives it. tests/dagster/test_dagster_instance.py checks what
these must keep doing."""

import functools
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import dagster._core.storage.event_log.in_memory as event_log_in_memory
import dagster._core.storage.runs.in_memory as runs_in_memory
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from dagster._core.instance import InstanceType
from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
from dagster._core.run_coordinator import DefaultRunCoordinator
from dagster._core.storage.event_log import InMemoryEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata
from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
from dagster._core.storage.root import LocalArtifactStorage
from dagster._core.storage.runs import InMemoryRunStorage
from dagster._core.storage.runs.schema import InstanceInfo, RunStorageSqlMetadata
from dagster._core.storage.sql import get_alembic_config
from dagster._core.storage.sqlite import create_in_memory_conn_string
from sqlalchemy.pool import NullPool

SETTINGS = {"telemetry": {"enabled": False}}


@functools.cache
def _migrations(storage_module_file: str) -> ScriptDirectory:
    """Dagster's SQLite migrations of a storage, read once per process (and before the fork,
    by the warm-up): Dagster's own stamp reads all ~90 migration files again for each
    storage of each instance, 20 of an instance's 26 ms."""
    config = get_alembic_config(storage_module_file, "sqlite/alembic/alembic.ini")
    return ScriptDirectory.from_config(config)


def _stamp_head(storage_module_file: str, connection: sa.Connection) -> None:
    """What Dagster's ``stamp_alembic_rev`` does to a new database: its schema is marked
    as at the newest migration."""
    MigrationContext.configure(connection).stamp(_migrations(storage_module_file), "head")


class RunStorage(InMemoryRunStorage):
    """Dagster's in-memory run storage, made as ``InMemoryRunStorage.__init__`` makes it
    (without a preload), stamped through the migrations read once."""

    def __init__(self) -> None:
        self._engine = sa.create_engine(
            create_in_memory_conn_string(f"runs-{uuid.uuid4()}"), poolclass=NullPool
        )
        # Held for the instance's life: the named in-memory database lives while it is open.
        self._held_conn = self._engine.connect()
        with self._held_conn.begin():
            RunStorageSqlMetadata.create_all(self._held_conn)
            _stamp_head(runs_in_memory.__file__, self._held_conn)
            if "instance_info" not in sa.inspect(self._held_conn).get_table_names():
                InstanceInfo.create(self._held_conn)


class EventLog(InMemoryEventLogStorage):
    """Dagster's in-memory event log, made as ``InMemoryEventLogStorage.__init__`` makes it
    (without a preload, stamped through the migrations read once), on one connection for
    all its calls instead of a new one per call."""

    def __init__(self) -> None:
        self._inst_data = None
        self._engine = sa.create_engine(
            create_in_memory_conn_string(f"events-{uuid.uuid4()}"), poolclass=NullPool
        )
        self._handlers = defaultdict(set)
        self._storage_id = 0
        self._db_lock = threading.Lock()
        self._held_conn = self._engine.connect()
        with self._held_conn.begin():
            SqlEventLogStorageMetadata.create_all(self._held_conn)
            _stamp_head(event_log_in_memory.__file__, self._held_conn)
        # The same database, reached from any thread: every use is under _db_lock.
        self._shared_engine = sa.create_engine(
            self._engine.url, poolclass=NullPool, connect_args={"check_same_thread": False}
        )
        self._shared = self._shared_engine.connect()
        with self._shared.begin():
            self._shared.execute(sa.text("PRAGMA foreign_keys=ON;")).close()

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        with self._db_lock, self._shared.begin():
            yield self._shared

    def dispose(self) -> None:
        self._shared.close()
        self._shared_engine.dispose()
        super().dispose()


def run_instance(folder: str) -> dg.DagsterInstance:
    """A new instance for one run, its artifacts (the default IO manager's outputs) in
    ``folder``."""
    return dg.DagsterInstance(
        instance_type=InstanceType.EPHEMERAL,
        local_artifact_storage=LocalArtifactStorage(folder),
        run_storage=RunStorage(),
        event_storage=EventLog(),
        compute_log_manager=NoOpComputeLogManager(),
        run_coordinator=DefaultRunCoordinator(),
        run_launcher=SyncInMemoryRunLauncher(),
        settings=SETTINGS,
    )
