"""The agent's half of a deployment's log settings: what it sends the control plane of a run's
or code server's output (log tails, load errors, fetched output), masked and redacted. Where
it keeps a run's output ('local') is ``kept_logs.py``."""

import logging

from activities.context import passthrough_names
from tether_api.locations import CodeLocationSpec
from tether_api.logs import LogSettings
from tether_sdk.run_worker import redaction
from tether_sdk.run_worker.masking import Masker

log = logging.getLogger("tether.agent.logs")


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
