"""The agent's Nexus service settings (``TETHER_NEXUS_*``): whether it hosts ``tether.v1.Runs``,
with which token, for which callers, and how much of a run's outcome it returns."""

from pydantic import BaseModel, Field, SecretStr, field_validator

from workflows.nexus_models import NexusOutcomeDetail

ANY_NAMESPACE = "*"


class NexusSettings(BaseModel):
    token: SecretStr | None = Field(
        default=None,
        description="A nexus token of the agent's deployment (`tether tokens create NAME --kind "
        "nexus --deployment DEP`): with it the agent hosts the Nexus service tether.v1.Runs; "
        "without it, it hosts none. It can create and read the deployment's runs and "
        "terminate those it created, nothing else.",
    )
    callers: list[str] = Field(
        default_factory=list,
        description="The Temporal namespaces whose workflows may call the service "
        "(comma-separated; '*': any). Empty: only the agent's own namespace. Checked against "
        "the caller's link in each Nexus request; on Temporal Cloud, also restrict the "
        "endpoint's allowed caller namespaces.",
    )
    outcome: NexusOutcomeDetail = Field(
        default=NexusOutcomeDetail.FULL,
        description="What run_job returns beyond statuses, names and IDs. full: the failed "
        "step's error and the materializations' metadata (text from user code, in the "
        "operation's result and so in the caller's and the NexusRunWorkflow's histories); "
        "ids: none of it.",
    )

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    def allows(self, namespace: str | None, own_namespace: str) -> bool:
        """Whether a caller in ``namespace`` (None: the request named none) may call."""
        allowed = self.callers or [own_namespace]
        if ANY_NAMESPACE in allowed:
            return True
        return namespace is not None and namespace in allowed

    def describe_callers(self, own_namespace: str) -> str:
        allowed = self.callers or [own_namespace]
        return "any namespace" if ANY_NAMESPACE in allowed else "namespace " + ", ".join(allowed)
