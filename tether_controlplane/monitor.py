"""Periodic checks: run timeouts, admission of queued runs (e.g. after a limit change), and
the alerts that time decides (long runs, unavailable agents), and retention."""

import logging

from tether_controlplane.db import Database
from tether_controlplane.services import alerts, retention, runs
from tether_controlplane.settings import Settings
from tether_controlplane.tables import utcnow

log = logging.getLogger("tether.controlplane")


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
    try:
        with db.write() as s:
            retention.purge(
                s,
                utcnow(),
                settings.request_retention_hours,
                settings.skipped_tick_retention_days,
            )
    except Exception:
        log.exception("purging old requests and ticks failed; tried again next pass")
