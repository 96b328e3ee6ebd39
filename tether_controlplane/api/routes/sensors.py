"""User API: sensors, turned on and off, and their ticks."""

from tether_api.sensors import Sensor, SensorTick
from tether_controlplane.api.routes.automations import Docs
from tether_controlplane.api.routes.automations import router as automation_router
from tether_controlplane.services.sensors import SENSORS

router = automation_router(
    SENSORS,
    Sensor,
    SensorTick,
    Docs(
        list="Every sensor the deployment's code locations declare (or declared: "
        "``present`` false), with its status, cursor, next evaluation and last tick.",
        start="Turn it on: evaluated now, then at its interval. The choice outlasts redeploys.",
        ticks="Its evaluations, newest first: the runs each created, run keys already used, "
        "why it skipped, or the error and traceback of one that failed.",
    ),
)
