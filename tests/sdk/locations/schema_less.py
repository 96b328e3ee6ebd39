"""A config model pydantic validates but cannot describe as JSON schema."""

from pydantic import BaseModel, ConfigDict

from tether_sdk import Definitions, job, step


class Opaque:
    pass


class OpaqueConfig(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    thing: Opaque | None = None


@step
def use(config: OpaqueConfig) -> None: ...


defs = Definitions(jobs=[job("opaque", steps=[use], config=OpaqueConfig)])
