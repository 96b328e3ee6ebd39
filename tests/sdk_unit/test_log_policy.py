"""The run worker's log policy on real executions (MemoryEvents, real capture): what a mode
lets out, redaction's markers, masking; and the agent's filter of redacted text."""

import logging
from typing import Any

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


def run(policy: LogPolicy, the_job: Any = JOB) -> tuple[list[dict], list[str]]:
    written: list[str] = []
    policy.write = written.append
    events = MemoryEvents()
    events.policy = policy.apply
    execute(
        the_job,
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


PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
    "BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----"
)


@step
def prints_a_key() -> None:
    print(PEM)  # one LOG event per line: no single line holds the whole value


def test_a_secret_of_several_lines_is_masked_line_by_line() -> None:
    policy = LogPolicy(masker=Masker({"SA_KEY": PEM}))
    sent, _ = run(policy, job("key", steps=[prints_a_key]))
    text = "\n".join(e["message"] for e in sent if e["type"] == EventType.LOG)
    for line in PEM.splitlines():
        assert line not in text, line
    assert text.count("<masked:SA_KEY>") == 4


def test_a_message_is_cut_after_masking_and_never_through_a_secret() -> None:
    from tether_api.wire import MAX_MESSAGE_CHARS

    secret = "s3cr3t-" + "x" * 40
    long_line = "a" * (MAX_MESSAGE_CHARS - 20) + secret + "b" * 100
    events = MemoryEvents()
    events.policy = LogPolicy(masker=Masker({"TOKEN": secret})).apply
    events.emit(EventType.LOG, message=long_line)
    [event] = events.events
    assert len(event["message"]) <= MAX_MESSAGE_CHARS
    assert "s3cr3t" not in event["message"] and "[truncated" in event["message"]


def test_text_cut_inside_a_secret_has_that_part_masked() -> None:
    mask = Masker({"TOKEN": "tether_run_abcdefghijklmnop"})
    assert mask.cut("ghijklmnop and more") == "<masked:TOKEN> and more"  # a tail's start
    assert mask.cut("the token is tether_run_abcd") == "the token is <masked:TOKEN>"  # an end
    assert mask.cut("tether_run") == "<masked:TOKEN>"
    assert mask.cut("nothing here") == "nothing here"


def test_the_run_token_is_always_masked() -> None:
    env = {"TETHER_RUN_TOKEN": "tether_run_live-token-value", "TETHER_LOG_FORWARDING": "all"}
    policy = LogPolicy.from_env(env)
    events = MemoryEvents()
    events.policy = policy.apply
    events.emit(EventType.LOG, message=f"env: {env}")
    assert "live-token-value" not in events.events[0]["message"]
    assert "<masked:TETHER_RUN_TOKEN>" in events.events[0]["message"]


LONG_SECRET = "tether-long-line-secret-0123456789"


@step
def prints_a_very_long_line() -> None:
    import sys

    from tether_api.wire import MAX_MESSAGE_CHARS

    # One line longer than an event holds, written so that the cut falls inside the secret:
    # its first part ends the event sent at the cut, its rest begins the next one.
    sys.stdout.write("a" * (MAX_MESSAGE_CHARS - 10) + LONG_SECRET[:15])
    sys.stdout.write(LONG_SECRET[15:] + " and the rest of the line\n")


def test_a_secret_a_long_line_is_cut_through_is_masked_on_both_sides() -> None:
    policy = LogPolicy(masker=Masker({"LONG": LONG_SECRET}))
    sent, _ = run(policy, job("long", steps=[prints_a_very_long_line]))
    logs = [e for e in sent if e["type"] == EventType.LOG]
    assert len(logs) == 2, [len(e["message"]) for e in logs]
    assert logs[1]["data"] == {"stream": "stdout", "continued": True}
    assert logs[1]["message"] == "<masked:LONG> and the rest of the line"
    for fragment in (LONG_SECRET[:15], LONG_SECRET[15:], LONG_SECRET[8:20]):
        assert all(fragment not in e["message"] for e in logs), fragment
