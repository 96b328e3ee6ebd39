"""When a run page's event log fetches again: the rules, as plain functions."""

import time
from urllib.parse import parse_qs

from tether_controlplane.ui.runs import AUTO_LOAD_EVENTS, EVENT_PAGE, LATE_EVENTS_SECONDS, next_poll


def page(count: int, last_seq: int, status: str) -> dict:
    return {"events": [{}] * count, "last_seq": last_seq, "run_status": status}


def test_a_running_run_is_followed_every_second() -> None:
    poll = next_poll(page(3, 10, "STARTED"), None)
    assert poll is not None and poll.wait and not poll.click
    assert parse_qs(poll.query) == {"after": ["10"]}


def test_stored_pages_come_at_once_then_on_request() -> None:
    poll = next_poll(page(EVENT_PAGE, EVENT_PAGE, "SUCCESS"), None)
    assert poll is not None and not poll.wait and not poll.click
    far = next_poll(page(EVENT_PAGE, AUTO_LOAD_EVENTS, "STARTED"), None)
    assert far is not None and far.click


def test_an_ended_run_waits_for_late_events_then_stops() -> None:
    poll = next_poll(page(0, 10, "FAILURE"), None)
    assert poll is not None and poll.wait
    since = float(parse_qs(poll.query)["final_since"][0])
    assert next_poll(page(0, 10, "FAILURE"), since) is not None
    assert next_poll(page(0, 10, "FAILURE"), time.time() - LATE_EVENTS_SECONDS - 1) is None
