"""The run worker's log policy on real executions (MemoryEvents, real capture): what a mode
lets out, redaction's markers, masking; and the agent's filter of redacted text."""

import logging

import pytest

from tether_api.enums import EventType
from tether_api.logs import LogForwarding
from tether_sdk import job, step
from tether_sdk.run_worker.capture import OutputCapture
from tether_sdk.run_worker.events import MemoryEvents
from tether_sdk.run_worker.executor import execute
from tether_sdk.run_worker.masking import Masker
from tether_sdk.run_worker.policy import LogPolicy
from tether_sdk.run_worker.redaction import without_redacted

SECRET = "hunter2-very-secret"


@step
def chatty() -> None:
    print("printed line")
    logging.getLogger("user.code").warning("a record")
    print(f"token={SECRET}")


@step
def explode() -> None:
    raise KeyError(f"missing {SECRET}")


JOB = job("mixed", steps=[chatty, explode])


def run(policy: LogPolicy) -> tuple[list[dict], list[str]]:
    written: list[str] = []
    policy.write = written.append
    events = MemoryEvents()
    events.policy = policy.apply
    execute(
        JOB,
        None,
        events,
        run_id="r1",
        capture=OutputCapture(events, forward_text=policy.forwards_text),
    )
    return events.events, written


def test_all_forwards_text_with_secrets_masked() -> None:
    events, written = run(LogPolicy(masker=Masker({"API_TOKEN": SECRET})))
    logs = [e["message"] for e in events if e["type"] == EventType.LOG]
    assert logs == ["printed line", "a record", "token=<masked:API_TOKEN>"]
    failure = next(e for e in events if e["type"] == EventType.STEP_FAILURE)
    assert "<masked:API_TOKEN>" in failure["message"] and SECRET not in str(failure)
    assert written == []


@pytest.mark.parametrize("mode", [LogForwarding.STRUCTURED, LogForwarding.LOCAL])
def test_other_modes_send_no_log_event_and_keep_records_on_stderr(
    mode: LogForwarding, capsys: pytest.CaptureFixture[str]
) -> None:
    events, _ = run(LogPolicy(forwarding=mode))
    assert EventType.LOG not in {e["type"] for e in events}
    # Numbered without gaps: dropped before numbering.
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    captured = capsys.readouterr()
    assert "printed line" in captured.out
    assert "WARNING user.code: a record" in captured.err


def test_redaction_sends_an_id_and_a_class_and_writes_the_text_under_it() -> None:
    events, written = run(LogPolicy(redact_errors=True, masker=Masker({"API_TOKEN": SECRET})))
    failure = next(e for e in events if e["type"] == EventType.STEP_FAILURE)
    error_id = failure["data"]["error_id"]
    assert failure["data"]["error_class"] == "KeyError"
    assert set(failure["data"]) == {"error_id", "error_class", "redacted", "duration_s"}
    assert failure["message"] == (
        f"step 'explode' failed: KeyError (error ID {error_id}; the message and traceback "
        "are in the run's output in your environment, under this ID)"
    )
    (block,) = written
    assert block.startswith(f"tether: error {error_id} (KeyError): full text follows")
    assert "missing <masked:API_TOKEN>" in block and "Traceback" in block
    assert block.endswith(f"tether: end of error {error_id}")


def test_the_agent_leaves_out_redacted_text_even_from_a_cut_tail() -> None:
    lines = [
        "before",
        "tether: error err-00aa (ValueError): full text follows, kept here only",
        "ValueError: data",
        "  File x",
        "tether: end of error err-00aa",
        "after",
    ]
    assert without_redacted(lines) == [lines[0], lines[1], lines[4], lines[5]]
    # A tail that starts inside a block, and one that ends inside another.
    assert without_redacted(lines[2:]) == ["tether: end of error err-00aa", "after"]
    assert without_redacted(lines[:3]) == ["before", lines[1]]


def test_short_values_are_not_masked_and_longer_ones_win() -> None:
    masker = Masker({"SHORT": "abc", "LONG": "abcdefgh", "PART": "abcd"})
    assert masker.text("abc abcd abcdefgh") == "abc <masked:PART> <masked:LONG>"
    assert masker.value({"k": ["abcd", 1]}) == {"k": ["<masked:PART>", 1]}


def test_an_unknown_mode_keeps_text_home(capfd: pytest.CaptureFixture[str]) -> None:
    policy = LogPolicy.from_env({"TETHER_LOG_FORWARDING": "everything"})
    assert policy.forwarding == LogForwarding.STRUCTURED
    # Said on the worker's real stderr: the output the agent keeps.
    assert "is not one of all, structured, local" in capfd.readouterr().err
