"""User API: schedules, turned on and off, and their ticks."""

from tether_api.schedules import Schedule, ScheduleTick
from tether_controlplane.api.routes.automations import Docs
from tether_controlplane.api.routes.automations import router as automation_router
from tether_controlplane.services.schedules import SCHEDULES

router = automation_router(
    SCHEDULES,
    Schedule,
    ScheduleTick,
    Docs(
        list="Every schedule the deployment's code locations declare (or declared: "
        "``present`` false), with its status, next tick and last tick.",
        start="Turn it on: its ticks from now on create runs. The choice outlasts redeploys.",
        ticks="Its ticks, newest first, each with its outcome: the run it created, skipped "
        "(missed while the scheduler was down), or the error that kept it from creating one.",
    ),
)
