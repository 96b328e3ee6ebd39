"""Code locations as users deploy them and as the API answers them."""

from datetime import datetime
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tether_api.enums import CodeLocationKind, CodeLocationStatus
from tether_api.logs import LogSettings
from tether_api.names import Name
from tether_api.paths import (
    MODULE_PATTERN,
    PYTHON_FILE_PATTERN,
    RELATIVE_FILE_PATTERN,
    WORKING_DIRECTORY_PATTERN,
    check,
    check_module,
    check_working_directory,
    python_file_problem,
)
from tether_api.snapshot import DefinitionsSnapshot
from tether_api.wire import JSON_NUMBER, MAX_MESSAGE_CHARS, JsonBool


class VolumeMount(BaseModel):
    """One volume of a location's containers."""

    source: str = Field(
        min_length=1,
        max_length=1000,
        description="A named volume, or an absolute host path (a bind mount: only where the "
        "agent allows host mounts).",
    )
    target: str = Field(
        min_length=1, max_length=1000, pattern=r"^/", description="Absolute path in the container."
    )
    read_only: JsonBool = Field(default=False, description="Mount it read-only.")


class ContainerContext(BaseModel):
    """How the Docker launcher runs the location's containers (code server and run workers).
    Not a place for secrets: it is stored by the control plane as given; name them in
    ``passthrough_env`` and the agent copies them from its own environment."""

    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment variables for the containers."
    )
    passthrough_env: list[str] = Field(
        default_factory=list,
        description="Extra names of variables the agent copies from its own environment.",
    )
    volumes: list[VolumeMount] = Field(default_factory=list, max_length=100)
    network: str | None = Field(
        default=None,
        max_length=200,
        description="Network to attach to ('host' for host networking); the agent's own "
        "setting decides which are allowed. Default: the agent's network.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Extra container labels; keys starting with 'tether.' are the launcher's.",
    )
    cpus: Annotated[float, Gt(0), Le(1024), JSON_NUMBER] | None = Field(
        default=None, description="CPU limit, in cores (e.g. 0.5)."
    )
    memory: str | None = Field(
        default=None,
        pattern=r"^[0-9]+[bkmgBKMG]?$",
        description="Memory limit, e.g. '512m' or '2g'.",
    )
    warm_pool: Annotated[int, Ge(0), Le(32), JSON_NUMBER] = Field(
        default=0,
        description="Run containers kept started, with the code imported, waiting for a run: "
        "a run takes one when there is one (and another is started in its place) instead of "
        "starting a container. Per code server generation; 0 (the default) keeps none.",
    )


def _is_string(field: str) -> dict[str, Any]:
    return {"required": [field], "properties": {field: {"type": "string"}}}


# A Dagster project named by its folder alone: its pyproject.toml says where its
# definitions are ([tool.dagster] module_name, or [tool.dg.project]).
_DAGSTER_PROJECT = {
    "required": ["kind", "working_directory"],
    "properties": {
        "kind": {"const": "dagster"},
        "working_directory": {"type": "string"},
        "python_file": {"type": "null"},
    },
}


def one_target_schema(python_file_rule: dict[str, Any] | None = None) -> dict[str, Any]:
    """Exactly one of ``module`` and ``python_file`` (or, for a Dagster project, neither
    with a ``working_directory``), as JSON Schema that keeps the model a plain object with
    both properties optional: a generated client types both (a ``oneOf`` beside the
    properties makes generators see a union of the two one-field objects).

    ``python_file_rule``: what else a given python_file must satisfy."""
    return {
        "if": _is_string("module"),
        "then": {"properties": {"python_file": {"type": "null"}}},
        "else": {
            "anyOf": [{**_is_string("python_file"), **(python_file_rule or {})}, _DAGSTER_PROJECT]
        },
    }


_ONE_TARGET = (
    "Exactly one of 'module' and 'python_file' is given (the other absent or null); a body "
    "with both, or neither, is refused with a 422 (except a Dagster project's: kind "
    "'dagster' with a working_directory whose pyproject.toml names its module)."
)


class CodeLocationSpec(BaseModel):
    """What to run for a code location: exactly one of ``module`` and ``python_file`` (the
    other absent or null).

    The shape the control plane stores and answers with. A deploy sends the stricter
    ``CodeLocationDeploy``: specs stored before its path rules existed still read back."""

    image: str | None = Field(
        default=None, max_length=500, description="Container image (Docker launcher)."
    )
    working_directory: str | None = Field(
        default=None,
        max_length=1000,
        description="Working directory: an absolute path with no '..' components, on the "
        "agent's host (process launcher) or in the image (Docker launcher).",
    )
    python_executable: str | None = Field(
        default=None, max_length=1000, description="Python to run (process launcher)."
    )
    # The rule _one_target enforces, said in the schema (see one_target_schema).
    model_config = ConfigDict(json_schema_extra=one_target_schema())

    kind: CodeLocationKind = Field(
        default=CodeLocationKind.TETHER,
        description="What the code is written with: 'tether' (Tether's SDK, the default) or "
        "'dagster' (a Dagster project, run unchanged: its image needs "
        "'tether-sdk[dagster]').",
    )
    attribute: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The module attribute holding the Definitions (Dagster: or a @definitions "
        "function), when the module has more than one; default: 'defs' or the only one "
        "(Dagster: found as Dagster finds it).",
    )

    module: str | None = Field(
        default=None,
        max_length=300,
        pattern=MODULE_PATTERN,
        description="Module to import, as a dotted name (e.g. 'my_project.definitions'). "
        + _ONE_TARGET,
    )
    python_file: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="File to load: a path with no '..' components, relative to "
        "working_directory when that is given (e.g. 'definitions.py'). " + _ONE_TARGET,
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables (not secret: stored as given)."
    )
    passthrough_env: list[str] = Field(
        default_factory=list,
        description="Names of variables the agent copies from its own environment: secrets "
        "stay in the user's environment and never reach the control plane.",
    )
    command: list[str] | None = Field(
        default=None, description="Overrides the code server command, for custom images."
    )
    container: ContainerContext | None = Field(
        default=None, description="Docker launcher: env, volumes, network, labels, limits."
    )
    agent_queue: Name | None = Field(
        default=None,
        description="The agent queue whose agents serve this location (`tether agent run "
        "--queue NAME`); unset: the deployment's default queue.",
    )
    launch: Literal["cold", "warm"] = Field(
        default="warm",
        description="Process launcher: 'warm' (the default) forks each run worker from the "
        "code server's fork server (user code already imported; module-level code runs once "
        "per code server), falling back to a cold start when it is not up; 'cold' starts a "
        "new interpreter per run and never forks.",
    )
    logs: LogSettings | None = Field(
        default=None,
        description="This location's log settings, replacing the deployment's whole; unset: "
        "the deployment's.",
    )

    @model_validator(mode="after")
    def _one_target(self) -> "CodeLocationSpec":
        dagster = self.kind == CodeLocationKind.DAGSTER
        project = dagster and self.working_directory and not self.python_file
        if bool(self.module) == bool(self.python_file) and not (project and not self.module):
            raise ValueError(
                "give exactly one of 'module' (an importable module) or 'python_file' "
                "(a path to a .py file) holding the definitions"
                + (
                    ", or, for a Dagster project, a 'working_directory' whose pyproject.toml "
                    "names its module"
                    if dagster
                    else ""
                )
            )
        return self


class CodeLocationDeploy(CodeLocationSpec):
    """A code location's spec as deployed (``PUT``): its paths and module are checked, each
    rule published in the schema and explained in the error."""

    model_config = ConfigDict(
        json_schema_extra=one_target_schema(
            # With a working directory, the python file is relative to it.
            {
                "if": _is_string("working_directory"),
                "then": {"properties": {"python_file": {"pattern": RELATIVE_FILE_PATTERN}}},
            }
        )
    )

    # The validators run before the published pattern and say, in their own words, what it
    # allows; the two agree exactly (see the *_PATTERN constants).
    working_directory: (
        Annotated[
            str,
            Field(max_length=1000, pattern=WORKING_DIRECTORY_PATTERN),
            BeforeValidator(check_working_directory),
        ]
        | None
    ) = Field(
        default=None,
        description="Working directory: an absolute path with no '..' components, on the "
        "agent's host (process launcher) or in the image (Docker launcher).",
    )
    module: (
        Annotated[str, Field(max_length=300, pattern=MODULE_PATTERN), BeforeValidator(check_module)]
        | None
    ) = Field(
        default=None,
        description="Module to import, as a dotted name (e.g. 'my_project.definitions'). "
        + _ONE_TARGET,
    )
    python_file: (
        Annotated[str, Field(min_length=1, max_length=1000, pattern=PYTHON_FILE_PATTERN)] | None
    ) = Field(
        default=None,
        description="File to load: a path with no '..' components, relative to "
        "working_directory when that is given (e.g. 'definitions.py'), else relative to the "
        "agent's directory or absolute. " + _ONE_TARGET,
    )

    @field_validator("python_file", mode="before")
    @classmethod
    def _python_file_inside(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            check(python_file_problem(value, info.data.get("working_directory")))
        return value


class CodeLocationError(BaseModel):
    message: str = Field(max_length=MAX_MESSAGE_CHARS)
    log_tail: list[str] = Field(default_factory=list, description="Last lines of server output.")


class StatusChange(BaseModel):
    status: CodeLocationStatus
    message: str | None = None
    at: datetime


class CodeLocation(BaseModel):
    name: str
    deployment: str
    spec: CodeLocationSpec
    status: CodeLocationStatus
    generation: int = Field(description="Increases with every change of spec and every redeploy.")
    error: CodeLocationError | None = None
    snapshot: DefinitionsSnapshot | None = None
    snapshot_updated_at: datetime | None = None
    deployed_at: datetime | None = Field(
        default=None,
        description="When the current generation was asked for (deploy, redeploy, changed spec).",
    )
    created_at: datetime
    updated_at: datetime
    removed: bool = False
    status_history: list[StatusChange] | None = Field(
        default=None, description="Most recent first; only in the single-location view."
    )
    warning: str | None = Field(
        default=None,
        description="Something that keeps the location from being served, e.g. no live agent "
        "serves its agent queue.",
    )
    log_settings: LogSettings = Field(
        default_factory=LogSettings,
        description="The settings its runs and code server follow: the spec's 'logs', else "
        "the deployment's.",
    )


class CodeLocationPutResult(BaseModel):
    code_location: CodeLocation
    changed: bool = Field(description="False when the spec was already deployed as given.")
