"""Where a run's logs and errors go: the settings of a deployment or code location, how they
reach the run worker (environment variables), and the bodies of the log-fetching calls.

Shared by the control plane, the agent and the run worker: it depends on pydantic only.
"""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, Strict

# The run worker's environment (set by the agent's launch, read by ``options_from_env`` and
# ``tether run-worker``; all three launch paths read the same names).
ENV_FORWARDING = "TETHER_LOG_FORWARDING"
ENV_REDACT_ERRORS = "TETHER_REDACT_ERRORS"
# Comma-separated names of the variables whose values are masked in log text: the location's
# passthrough_env (and its container's). Only names travel; the values are the worker's own.
ENV_MASK_NAMES = "TETHER_MASK_ENV"

# How long a user's GET .../logs waits for an agent to answer, at most.
MAX_LOG_WAIT_SECONDS = 60.0
# The most log text an agent sends back for one fetch: the latest part of the file.
MAX_FETCHED_LOG_BYTES = 4 * 1024 * 1024


def _check_store_url(value: object) -> object:
    # Runs before the published pattern (^file:///), to say in words what it allows.
    if isinstance(value, str) and not value.startswith("file:///"):
        raise ValueError(
            f"store_url {value!r} is not supported: give a file:///absolute/directory URL on "
            "the agent's host (other stores, such as s3://, are not implemented)"
        )
    return value


def _no_nul(value: str) -> str:
    # Stored as JSON text: a NUL cannot be (and means nothing in a path).
    return value.replace("\x00", "\ufffd")


class LogForwarding(StrEnum):
    ALL = "all"
    STRUCTURED = "structured"
    LOCAL = "local"


class LogSettings(BaseModel):
    """What leaves the user's environment for the control plane about a run's output."""

    forwarding: LogForwarding = Field(
        default=LogForwarding.ALL,
        description="'all' (the default): stdout/stderr lines and logging records are sent as "
        "LOG events. 'structured': only run and step lifecycle events are sent, never log "
        "text; the output stays in the agent's run files. 'local': as 'structured', and the "
        "agent keeps each run's output and serves it on request, through the control plane's "
        "request queue, to users of this deployment only (never stored by the control plane); "
        "with store_url, the agent writes it there instead and the control plane stores only "
        "the resulting URL.",
    )
    store_url: (
        Annotated[
            str,
            Field(min_length=1, max_length=1000, pattern=r"^file:///"),
            BeforeValidator(_check_store_url),
            AfterValidator(_no_nul),
        ]
        | None
    ) = Field(
        default=None,
        description="With forwarding 'local': a directory URL where the agent writes each "
        "finished run's output as {store_url}/{deployment}/{run_id}.log; the control plane "
        "keeps only that URL. Only file:// URLs are implemented (a path on the agent's host, "
        "e.g. a mounted share); s3:// and similar would have the same shape.",
    )
    redact_errors: Annotated[bool, Strict()] = Field(
        default=False,
        description="Errors of user code (a step's exception, a location that fails to "
        "import) reach the control plane as an error ID and class only; the message and "
        "traceback stay in the agent's output under that ID.",
    )

    def to_env(self, mask_names: list[str]) -> dict[str, str]:
        """The run worker's environment for these settings."""
        return {
            ENV_FORWARDING: self.forwarding.value,
            ENV_REDACT_ERRORS: "1" if self.redact_errors else "0",
            ENV_MASK_NAMES: ",".join(sorted(set(mask_names))),
        }

    @property
    def forwards_text(self) -> bool:
        return self.forwarding == LogForwarding.ALL


def effective(deployment: LogSettings | None, location: LogSettings | None) -> LogSettings:
    """A code location's own settings, when it has them, replace the deployment's whole."""
    return location or deployment or LogSettings()


class RunLogs(BaseModel):
    """A run's log text as its deployment's settings allow it to be seen."""

    run_id: str
    forwarding: LogForwarding = Field(description="The run's forwarding mode.")
    source: Literal["events", "agent", "store", "none"] = Field(
        description="'events': forwarded as LOG events (read them with GET .../events). "
        "'agent': fetched just now from the agent that ran it, not stored. 'store': written "
        "by the agent to the URL in 'url'. 'none': not forwarded and not served."
    )
    text: str | None = Field(default=None, description="The log text (source 'agent').")
    truncated: bool = Field(default=False, description="Only the latest part is in 'text'.")
    url: str | None = Field(default=None, description="Where the log was written ('store').")
    agent: str | None = Field(default=None, description="The agent that answered ('agent').")
    message: str = Field(default="", description="What the answer means, in one line.")


class FetchRunLogsPayload(BaseModel):
    """A FETCH_RUN_LOGS request: send the run's output to the waiting user call."""

    run_id: str
    agent: str | None = Field(
        default=None, description="The agent that launched the run: its host holds the log."
    )


class RunLogsAnswer(BaseModel):
    """An agent's answer to a FETCH_RUN_LOGS request."""

    agent_name: str = Field(max_length=63)
    text: str | None = Field(
        default=None, max_length=MAX_FETCHED_LOG_BYTES, description="The masked log text."
    )
    truncated: bool = Field(default=False, description="Only the latest part was sent.")
    error: str | None = Field(
        default=None, max_length=2000, description="Why there is no text (e.g. removed)."
    )


class RunLogUrl(BaseModel):
    """Where the agent wrote a finished run's output (forwarding 'local' with store_url)."""

    url: str = Field(min_length=1, max_length=2000)
