"""One job, one step, many log lines: the event ingestion benchmark."""

from pydantic import BaseModel, Field

from tether_sdk import Definitions, StepContext, job, step


class ChattyConfig(BaseModel):
    lines: int = Field(default=20_000, ge=0)
    use_print: bool = Field(default=False, description="print() instead of ctx.log.info().")


@step
def chatter(ctx: StepContext, config: ChattyConfig) -> int:
    for i in range(config.lines):
        if config.use_print:
            print(f"line {i}")
        else:
            ctx.log.info("line %d", i)
    return config.lines


chatty = job("chatty", steps=[chatter], config=ChattyConfig)

defs = Definitions(jobs=[chatty])
