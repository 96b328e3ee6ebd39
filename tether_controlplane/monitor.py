"""Periodic checks: run timeouts, admission of queued runs (e.g. after a limit change), and
the alerts that time decides (long runs, unavailable agents); and, every
``retention_interval_seconds``, the retention pass, in a thread of its own so that a long one
never delays timeouts and admission."""

import logging
import threading
import time

from tether_controlplane.db import Database
from tether_controlplane.services import alerts, retention, runs
from tether_controlplane.settings import Settings
from tether_controlplane.tables import utcnow

log = logging.getLogger("tether.controlplane")

# One retention pass at a time in this process, and when the next one is due (monotonic).
_retention_running = threading.Lock()
_retention_due = 0.0


def monitor_once(db: Database, settings: Settings) -> None:
    with db.write() as s:
        runs.check_timeouts(
            s,
            utcnow(),
            settings.run_start_timeout_seconds,
            settings.run_heartbeat_timeout_seconds,
            settings.agent_heartbeat_timeout_seconds,
        )
        runs.admit_all(s)
    # Its own transaction: trouble deciding an alert must not undo timeouts and admission.
    try:
        with db.write() as s:
            alerts.check_time_based(s, utcnow())
    except Exception:
        log.exception("deciding time-based alerts failed; tried again next pass")
    start_retention_when_due(db, settings)


def start_retention_when_due(db: Database, settings: Settings) -> bool:
    """Start a retention pass in a daemon thread if one is due and none is running."""
    global _retention_due
    now = time.monotonic()
    if now < _retention_due or not _retention_running.acquire(blocking=False):
        return False
    _retention_due = now + settings.retention_interval_seconds
    threading.Thread(
        target=_retention_pass, args=(db, settings), name="tether-retention", daemon=True
    ).start()
    return True


def _retention_pass(db: Database, settings: Settings) -> None:
    try:
        removed = retention.run_pass(db, settings)
        if removed:
            log.info(
                "retention removed %s",
                ", ".join(f"{n} {what}" for what, n in sorted(removed.items())),
            )
    except Exception:
        log.exception("the retention pass failed; tried again at the next interval")
    finally:
        _retention_running.release()
