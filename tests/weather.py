"""A Tether job whose config nests models, for tests of unknown run config keys: the snapshot
is what the SDK makes of these definitions (no agent needed to check a config)."""

from pydantic import BaseModel

from tether_sdk import Definitions, job, step


class Station(BaseModel):
    id: str
    height_m: float = 0


class Weather(BaseModel):
    city: str
    fail_load: bool = False
    stations: list[Station] = []


@step
def fetch(config: Weather) -> str:
    return config.city


SNAPSHOT = Definitions(jobs=[job("weather", steps=[fetch], config=Weather)]).snapshot()
