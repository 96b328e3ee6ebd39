"""The run's log settings, applied to each event before it is numbered and sent: LOG events
are dropped unless everything is forwarded, failures are redacted when asked, and secret
values are masked in whatever is sent."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tether_api.enums import EventType
from tether_api.logs import ENV_FORWARDING, ENV_REDACT_ERRORS, LogForwarding
from tether_api.wire import MAX_MESSAGE_CHARS
from tether_sdk.run_worker import redaction
from tether_sdk.run_worker.events import Event, truncate
from tether_sdk.run_worker.masking import Masker, mask_names

RUN_TOKEN_ENV = "TETHER_RUN_TOKEN"


def _stderr(text: str) -> None:
    import sys

    print(text, file=sys.__stderr__ or sys.stderr, flush=True)


@dataclass
class LogPolicy:
    forwarding: LogForwarding = LogForwarding.ALL
    redact_errors: bool = False
    masker: Masker = field(default_factory=lambda: Masker({}))
    # Where a redacted error's full text goes: the worker's real stderr, i.e. the output the
    # agent keeps (output.log of the process launcher, the container's log).
    write: Callable[[str], None] = _stderr

    @property
    def forwards_text(self) -> bool:
        return self.forwarding == LogForwarding.ALL

    @property
    def is_default(self) -> bool:
        return self.forwards_text and not self.redact_errors and not self.masker

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "LogPolicy":
        """From the worker's environment (TETHER_LOG_FORWARDING, TETHER_REDACT_ERRORS,
        TETHER_MASK_ENV); an unknown mode keeps text at home rather than leak it."""
        raw = env.get(ENV_FORWARDING, "").strip().lower() or LogForwarding.ALL.value
        try:
            forwarding = LogForwarding(raw)
        except ValueError:
            _stderr(
                f"tether run-worker: {ENV_FORWARDING}={raw!r} is not one of all, structured, "
                "local; forwarding structured events only"
            )
            forwarding = LogForwarding.STRUCTURED
        redact = env.get(ENV_REDACT_ERRORS, "").strip().lower() in ("1", "true", "yes")
        # The run's own token too: a step that prints its environment must not publish it.
        names = [*mask_names(env), RUN_TOKEN_ENV]
        return cls(forwarding, redact, Masker.from_names(names, env))

    def apply(self, event: Event) -> Event | None:
        """The event as it may leave, or None when it may not."""
        type_ = event["type"]
        if type_ == EventType.LOG and not self.forwards_text:
            return None
        if self.redact_errors and redaction.needs_redaction(type_, event["data"]):
            event["message"], event["data"] = redaction.redact(
                type_, event["message"], event["data"], lambda t: self.write(self.masker.text(t))
            )
        if self.masker:
            # The rest of a line cut in two may begin inside a secret.
            continued = event["data"].get("continued") if event["data"] else False
            masked = self.masker.cut if continued else self.masker.text
            event["message"] = masked(event["message"])
            if event["data"]:
                event["data"] = self.masker.value(event["data"])
        if len(event["message"]) > MAX_MESSAGE_CHARS:  # cut after masking (events.emit)
            event["message"] = truncate(event["message"], edge=self.masker.cut)
        return event
