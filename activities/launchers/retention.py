"""How long the process launcher keeps the folders of finished processes, and how much disk
they may use.

Every code server and run worker gets a folder ``{state_dir}/processes/{label}/`` (its
output, exit code and records, see README.md next to this file). Code servers' folders are
removed when their workflow stops them; run workers' folders stay after the run so its log
can be read. The sweep here bounds both: by age (``keep_hours``) and by total size
(``max_total_mb``, oldest first). The policy lives here; which folders are finished, and the
locking that keeps the sweep away from running processes, is ``ProcessLauncher.sweep``.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from activities.launchers.base import Launcher

log = logging.getLogger(__name__)

MB = 1024 * 1024
# A run worker whose outcome was never recorded (its workflow has not reached finish_run yet)
# is kept at least this long, whatever keep_hours says: its exit code and last log lines are
# what the run's FAILURE message is made of.
UNRECORDED_KEEP_HOURS = 24.0
# At most this many names in the log line of one sweep.
LOGGED_NAMES = 20


class OutputRetention(BaseModel):
    """What the process launcher keeps of finished processes. Every field has a
    ``TETHER_OUTPUT_RETENTION_*`` variable."""

    keep_hours: float = Field(
        default=168,
        ge=0,
        description="How long the folder of a finished process (run workers' output.log, exit "
        "code) is kept after its last output, exit or recorded outcome. A run worker whose "
        f"outcome is not recorded yet is kept at least {UNRECORDED_KEEP_HOURS:g} hours.",
    )
    max_total_mb: float = Field(
        default=2048,
        ge=0,
        description="Total size of the folders of finished processes; beyond it the oldest "
        "are removed first (only those whose outcome is recorded). 0: no bound.",
    )
    max_log_mb: float = Field(
        default=100,
        ge=0,
        description="Cap of one process's output.log while it runs: past it, the supervisor "
        "cuts the file to its latest half (log tails keep working). 0: no cap.",
    )
    sweep_interval_seconds: float = Field(
        default=600, gt=0, description="How often the agent looks for folders to remove."
    )


@dataclass(frozen=True)
class FinishedFolder:
    """The folder of a process that has exited (or of nothing the launcher recorded)."""

    name: str  # the label, or the folder's name when no record names one
    path: Path
    last_activity: float  # seconds since the epoch: the newest file's mtime
    size: int  # bytes
    # Nobody needs it any more (a code server, or a run whose outcome is recorded): only such
    # folders are removed for the size bound; the others only once expired.
    settled: bool


def sweep_folders(
    folders: Iterable[FinishedFolder],
    retention: OutputRetention,
    remove: Callable[[FinishedFolder], bool],
    now: float | None = None,
) -> list[FinishedFolder]:
    """Oldest first: ``remove`` every expired folder, then settled ones while the total size
    exceeds ``max_total_mb``. ``remove`` checks again under the folder's lock and says whether
    it removed it (a folder locked or reused meanwhile stays). Returns the removed ones."""
    now = time.time() if now is None else now
    keep = retention.keep_hours * 3600
    keep_unsettled = max(keep, UNRECORDED_KEEP_HOURS * 3600)
    limit = retention.max_total_mb * MB if retention.max_total_mb > 0 else None
    ordered = sorted(folders, key=lambda folder: folder.last_activity)
    total = sum(folder.size for folder in ordered)
    removed = []
    for folder in ordered:
        expired = now - folder.last_activity >= (keep if folder.settled else keep_unsettled)
        too_big = limit is not None and total > limit and folder.settled
        if (expired or too_big) and remove(folder):
            removed.append(folder)
            total -= folder.size
    if removed:
        names = [folder.name for folder in removed]
        log.info(
            "removed the output of %d finished process(es), %.1f MB: %s%s",
            len(removed),
            sum(folder.size for folder in removed) / MB,
            ", ".join(names[:LOGGED_NAMES]),
            f" and {len(names) - LOGGED_NAMES} more" if len(names) > LOGGED_NAMES else "",
        )
    return removed


async def sweep_periodically(
    launcher: Launcher, retention: OutputRetention, stop_event: asyncio.Event
) -> None:
    """Sweep now and every ``sweep_interval_seconds`` until ``stop_event`` is set. Nothing to
    do for launchers that keep nothing on disk (``supports_kept_output`` False; Docker: its log
    size is capped per container). A failed sweep is logged and tried again at the next
    interval."""
    if not launcher.supports_kept_output:
        return
    while not stop_event.is_set():
        try:
            await asyncio.to_thread(launcher.sweep, retention)
        except Exception:
            log.exception("sweeping the output of finished processes failed")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), retention.sweep_interval_seconds)
