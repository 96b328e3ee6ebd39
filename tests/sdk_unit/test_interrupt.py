"""Where a cancel may land: never inside the SDK's critical sections."""

import threading

import pytest

from tether_sdk.run_worker.interrupt import CancelState, RunCanceled


def test_a_cancel_inside_a_critical_section_is_raised_on_the_way_out() -> None:
    state = CancelState()
    state.in_step = True
    reached_end_of_section = False
    with pytest.raises(RunCanceled, match="stop"), state.critical():
        state.request("stop")  # as the signal handler would, mid-section
        reached_end_of_section = True
    assert reached_end_of_section and not state.in_step


def test_outside_a_step_a_cancel_is_only_recorded() -> None:
    state = CancelState()
    with state.critical():
        state.request("stop")
    assert state.requested and state.reason == "stop"


def test_other_threads_never_hold_the_main_threads_mask() -> None:
    state = CancelState()
    state.in_step = True
    entered, release = threading.Event(), threading.Event()

    def worker() -> None:
        with state.critical():
            entered.set()
            release.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    entered.wait(5)
    try:
        with pytest.raises(RunCanceled):  # not deferred by the other thread's section
            state.request("stop")
    finally:
        release.set()
        t.join()
