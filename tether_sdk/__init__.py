"""Tether's user-code SDK: declare jobs, assets, schedules and sensors; serve and run them.

Imports only the standard library, pydantic, httpx and ``tether_api``, so it fits in any
user image.
"""

from tether_sdk.context import StepContext
from tether_sdk.definitions import (
    Definitions,
    Job,
    Schedule,
    Step,
    asset,
    asset_job,
    job,
    schedule,
    step,
)
from tether_sdk.errors import DefinitionError
from tether_sdk.local import ExecutionResult, execute_job
from tether_sdk.partitions import (
    DailyPartitions,
    HourlyPartitions,
    MonthlyPartitions,
    MultiPartitions,
    PartitionsDefinition,
    StaticPartitions,
    WeeklyPartitions,
)
from tether_sdk.sensors import (
    RunRequest,
    RunStatusSensorContext,
    ScheduleContext,
    Sensor,
    SensorContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    sensor,
)

__all__ = [
    "DailyPartitions",
    "DefinitionError",
    "Definitions",
    "ExecutionResult",
    "HourlyPartitions",
    "Job",
    "MonthlyPartitions",
    "MultiPartitions",
    "PartitionsDefinition",
    "RunRequest",
    "RunStatusSensorContext",
    "Schedule",
    "ScheduleContext",
    "Sensor",
    "SensorContext",
    "SensorResult",
    "SkipReason",
    "StaticPartitions",
    "Step",
    "StepContext",
    "WeeklyPartitions",
    "asset",
    "asset_job",
    "execute_job",
    "job",
    "run_status_sensor",
    "schedule",
    "sensor",
    "step",
]
