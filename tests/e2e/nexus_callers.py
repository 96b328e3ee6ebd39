"""A caller's side of the Nexus service, as a user writes it: a workflow in another namespace
that runs a Tether job through the endpoint and awaits it (the README's example, near enough)."""

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tether_api.nexus import GetRunInput, RunInfo, RunJobInput, RunJobResult, TetherRuns


class CallerInput(BaseModel):
    endpoint: str
    job: RunJobInput


@workflow.defn
class RunJobCallerWorkflow:
    @workflow.run
    async def run(self, input: CallerInput) -> RunJobResult:
        runs = workflow.create_nexus_client(service=TetherRuns, endpoint=input.endpoint)
        return await runs.execute_operation(
            TetherRuns.run_job, input.job, schedule_to_close_timeout=timedelta(minutes=5)
        )


class GetRunCallerInput(BaseModel):
    endpoint: str
    run_id: str


@workflow.defn
class GetRunCallerWorkflow:
    @workflow.run
    async def run(self, input: GetRunCallerInput) -> RunInfo:
        runs = workflow.create_nexus_client(service=TetherRuns, endpoint=input.endpoint)
        return await runs.execute_operation(
            TetherRuns.get_run,
            GetRunInput(run_id=input.run_id),
            schedule_to_close_timeout=timedelta(minutes=1),
        )
