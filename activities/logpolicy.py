"""The agent's half of a deployment's log settings: what it sends the control plane of a run's
or code server's output (log tails, load errors), masked and redacted, and where it keeps a
run's output when the settings keep logs in the user's environment."""

import asyncio
import logging
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import unquote, urlparse

from tether_api.logs import LogSettings
from tether_api.models import CodeLocationSpec
from tether_sdk.run_worker import redaction
from tether_sdk.run_worker.masking import Masker

log = logging.getLogger("tether.agent.logs")


def passthrough_names(spec: CodeLocationSpec) -> list[str]:
    """The variables the agent copies into the location's processes: the secrets to mask."""
    return [*spec.passthrough_env, *(spec.container.passthrough_env if spec.container else [])]


def masker(spec: CodeLocationSpec) -> Masker:
    """Masks the values the agent's own environment holds for the location's secrets."""
    return Masker.from_names(passthrough_names(spec))


def outgoing_tail(settings: LogSettings, spec: CodeLocationSpec, lines: list[str]) -> list[str]:
    """The lines of a log tail the control plane may have: none unless everything is
    forwarded; never a redacted error's text; secrets masked."""
    if not settings.forwards_text:
        return []
    if settings.redact_errors:
        lines = redaction.without_redacted(lines)
    mask = masker(spec)
    # Masked as one text, so that a secret of several lines is found whole; as cut text, since
    # a tail may begin inside one.
    return mask.cut("\n".join(lines)).split("\n") if mask and lines else lines


def outgoing_text(settings: LogSettings, spec: CodeLocationSpec, text: str) -> str:
    """A whole log, as served to the deployment's users ('local'): masked, and without the
    text of redacted errors when errors are redacted."""
    if settings.redact_errors:
        text = "\n".join(redaction.without_redacted(text.split("\n")))
    # The latest part of a log may begin inside a secret.
    return masker(spec).cut(text)


def redact_error(
    settings: LogSettings, spec: CodeLocationSpec, what: str, first_line: str, full: str
) -> tuple[str, str]:
    """A user-code error (a location's definitions failing to load): with redact_errors,
    an error ID and class for the control plane, the full text in the agent's log under that
    ID; else the text, masked. Returns (one line, whole message)."""
    mask = masker(spec)
    if not settings.redact_errors:
        return mask.text(first_line), mask.text(full)
    error_id = redaction.new_error_id()
    cls = redaction.class_of({"error": first_line})
    log.error("%s: error %s (%s):\n%s", what, error_id, cls, mask.text(full))
    line = (
        f"{cls} (error ID {error_id}; the message and traceback are in the agent's log, "
        "under this ID)"
    )
    return line, line


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
