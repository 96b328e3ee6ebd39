"""Steps that misbehave in the ways real user code does (for the run worker's tests)."""

import sys
import threading
import time

from pydantic import BaseModel, field_validator

from tether_sdk import Definitions, StepContext, job, step

REGIONS = {"eu": "Europe"}


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("detached instance")

    __repr__ = __str__


class RegionConfig(BaseModel):
    region: str

    @field_validator("region")
    @classmethod
    def _known(cls, value: str) -> str:
        return REGIONS[value]  # a KeyError, which pydantic does not turn into a ValidationError


@step
def odd_metadata(ctx: StepContext) -> None:
    ctx.add_metadata(row=Unprintable(), huge=10**5000)


@step
def lookup(config: RegionConfig) -> str:
    return config.region


@step
def leaves_a_thread_printing() -> None:
    out = sys.stdout  # the captured stream, kept past the step's end

    def chatter() -> None:
        for i in range(200_000):
            print(f"progress {i}", file=out)

    threading.Thread(target=chatter, daemon=True).start()
    time.sleep(0.05)


@step
def interrupts_itself() -> None:
    raise KeyboardInterrupt("the step raised it itself")


@step
def independent() -> str:
    return "still ran"


@step
def chatty_forever() -> None:
    import logging

    log = logging.getLogger("user.chatty")
    i = 0
    while True:
        print(f"line {i}")
        log.info("record %d", i)
        i += 1


bad_metadata = job("bad_metadata", steps=[odd_metadata])
bad_validator = job("bad_validator", steps=[lookup], config=RegionConfig)
stray_thread = job("stray_thread", steps=[leaves_a_thread_printing])
keyboard_interrupt = job("keyboard_interrupt", steps=[interrupts_itself, independent])
chatty = job("chatty_forever", steps=[chatty_forever])

defs = Definitions(jobs=[bad_metadata, bad_validator, stray_thread, keyboard_interrupt, chatty])
