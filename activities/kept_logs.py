"""Where the agent keeps a finished run's output when its log settings keep logs in the user's
environment ('local'): its own directory, swept at the output retention's age, or a file://
store URL."""

import asyncio
import logging
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import unquote, urlparse

log = logging.getLogger("tether.agent.logs")


def store_path(store_url: str, deployment: str, run_id: str) -> Path:
    """The file a run's output is written to under a file:// store URL."""
    parsed = urlparse(store_url)
    if parsed.scheme != "file":
        raise ValueError(f"store_url {store_url!r}: only file:// URLs are implemented")
    return Path(unquote(parsed.path)) / deployment / f"{run_id}.log"


def kept_path(kept_dir: Path, run_id: str) -> Path:
    """Where the agent keeps a finished run's output ('local' without a store URL)."""
    return kept_dir / f"{run_id}.log"


def sweep_kept_logs(kept_dir: Path, keep_hours: float, now: float | None = None) -> list[Path]:
    """Remove kept outputs ('local' runs) older than ``keep_hours``, the age bound of the
    agent's output retention (TETHER_OUTPUT_RETENTION_KEEP_HOURS): kept copies live as long
    as the run folders they were copied from would. Returns what it removed."""
    now = time.time() if now is None else now
    removed = []
    for path in kept_dir.glob("*.log") if kept_dir.is_dir() else []:
        with suppress(OSError):  # removed meanwhile, or not ours to remove
            if now - path.stat().st_mtime >= keep_hours * 3600:
                path.unlink()
                removed.append(path)
    if removed:
        log.info("removed %d kept run output(s) older than %g h", len(removed), keep_hours)
    return removed


async def sweep_kept_logs_periodically(
    kept_dir: Path, keep_hours: float, interval_seconds: float, stop_event: asyncio.Event
) -> None:
    """``sweep_kept_logs`` now and every ``interval_seconds`` until ``stop_event`` is set."""
    while not stop_event.is_set():
        try:
            await asyncio.to_thread(sweep_kept_logs, kept_dir, keep_hours)
        except Exception:
            log.exception("sweeping kept run outputs failed")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), interval_seconds)
