"""The launchpad: choose a location and a job, write the run config in JSON or YAML, see it
checked against the job's schema (each error beside its field) before launching."""

import json
from dataclasses import dataclass, field
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from tether_api.configschema import ConfigField, fields
from tether_api.user_api import RUN_CONFIG_LOC
from tether_api.wire import MAX_RUN_CONFIG_BYTES
from tether_controlplane.ui.api import ApiProblem
from tether_controlplane.ui.common import api_path, deployment
from tether_controlplane.ui.render import page
from tether_controlplane.ui.session import Signed, require, require_post

router = APIRouter()
FORMATS = ("json", "yaml")


@dataclass
class Check:
    """What the launchpad says about a config: errors by field, and the others."""

    fields: list[ConfigField] = field(default_factory=list)
    by_field: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    valid: bool = False
    checked: bool = False  # False until the API has looked at it

    def add(self, loc: list[Any], msg: str) -> None:
        if tuple(loc[: len(RUN_CONFIG_LOC)]) == RUN_CONFIG_LOC:
            path = ".".join(str(p) for p in loc[len(RUN_CONFIG_LOC) :])
            if path in {f.path for f in self.fields}:
                self.by_field.setdefault(path, []).append(msg)
                return
            self.general.append(f"{path or 'run config'}: {msg}")
            return
        self.general.append(f"{'.'.join(str(p) for p in loc if p != 'body')}: {msg}")


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML without aliases: ``*name`` lets a few lines stand for gigabytes once the
    config is turned into JSON ("billion laughs"); a run config never needs one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.MarkedYAMLError(
                problem="aliases (*name) are not accepted in a run config", problem_mark=mark
            )
        return super().compose_node(parent, index)


def parse_config(text: str, fmt: str) -> dict[str, Any]:
    """The config as an object, or ValueError saying where the text is wrong."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text) if fmt == "json" else yaml.load(text, Loader=_YamlLoader)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ValueError(f"not valid YAML: {where}{getattr(exc, 'problem', None) or exc}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(
            f"the run config must be an object (a mapping), not {type(value).__name__}"
        )
    try:
        encoded = json.dumps(value, allow_nan=False)
    except TypeError as exc:
        raise ValueError(
            f"it holds a value JSON cannot: {exc} (write dates and times as quoted strings)"
        ) from None
    except ValueError:
        raise ValueError("it holds NaN or infinity, which JSON numbers cannot be") from None
    if len(encoded.encode()) > MAX_RUN_CONFIG_BYTES:
        raise ValueError(f"it is larger than {MAX_RUN_CONFIG_BYTES} bytes as JSON")
    return value


def parse_tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"tag {line.strip()!r} is not KEY=VALUE")
        tags[key.strip()] = value.strip()
    return tags


async def _check(
    signed: Signed, dep: str, location: str, job: str, config_text: str, fmt: str
) -> tuple[Check, dict[str, Any] | None]:
    check = Check()
    body = {"code_location": location, "job": job, "run_config": {}}
    try:
        config = parse_config(config_text, fmt)
    except ValueError as exc:
        check.general.append(f"run config: {exc}")
        config = None
    body["run_config"] = config or {}
    answer = await signed.api.post(api_path("deployments", dep, "runs", "validate"), body)
    check.fields = fields(answer.get("config_schema"))
    if config is None:  # the schema's fields are still worth showing
        return check, None
    for error in answer["errors"]:
        check.add(error["loc"], error["msg"])
    check.valid, check.checked = bool(answer["valid"]), True
    return check, config


async def _choices(signed: Signed, dep: str) -> list[dict[str, Any]]:
    locations = await signed.api.get(api_path("deployments", dep, "code-locations"))
    return [
        {
            "name": loc["name"],
            "jobs": [j["name"] for j in (loc.get("snapshot") or {}).get("jobs", [])],
        }
        for loc in locations
    ]


def _example(config_fields: list[ConfigField]) -> str:
    """A starting config: each top-level field's default, or a placeholder to fill in."""
    example = {
        f.path: f.default if f.has_default else None for f in config_fields if "." not in f.path
    }
    return json.dumps(example, indent=2, ensure_ascii=False)


@router.get("/d/{dep}/launchpad")
async def launchpad(request: Request, dep: str, location: str = "", job: str = "") -> Response:
    signed = require(request)
    found = await deployment(signed, dep)
    choices = await _choices(signed, dep)
    chosen = next((c for c in choices if c["name"] == location), None)
    config_fields: list[ConfigField] = []
    if chosen and job in chosen["jobs"]:
        config_fields = (await _check(signed, dep, location, job, "", "json"))[0].fields
    return page(
        request,
        "launchpad.html",
        signed,
        dep=found,
        choices=choices,
        location=location,
        job=job if chosen and job in chosen["jobs"] else "",
        check=Check(fields=config_fields),
        config_text=_example(config_fields),
        fmt="json",
        tags_text="",
        section="launchpad",
    )


# Room for a config at its size limit written out with indentation and comments.
Text = Annotated[str, Form(max_length=4 * MAX_RUN_CONFIG_BYTES)]


@router.post("/d/{dep}/launchpad/validate")
async def validate(
    request: Request, dep: str, location: Text, job: Text, config: Text = "", format: Text = "json"
) -> Response:
    signed = await require_post(request)
    try:
        check, _ = await _check(signed, dep, location, job, config, _fmt(format))
    except ApiProblem as problem:  # shown where the answer goes, not as a page htmx drops
        check = Check(general=[problem.detail])
    return page(request, "_validation.html", signed, check=check)


@router.post("/d/{dep}/launchpad")
async def launch(
    request: Request,
    dep: str,
    location: Text,
    job: Text,
    config: Text = "",
    format: Text = "json",
    tags: Text = "",
) -> Response:
    signed = await require_post(request)
    fmt = _fmt(format)
    check, parsed = await _check(signed, dep, location, job, config, fmt)
    try:
        tag_values = parse_tags(tags)
    except ValueError as exc:
        check.general.append(f"tags: {exc}")
        parsed = None
    if parsed is not None and check.valid:
        try:
            created = await signed.api.post(
                api_path("deployments", dep, "runs"),
                {"code_location": location, "job": job, "run_config": parsed, "tags": tag_values},
            )
        except ApiProblem as problem:
            if problem.status != 422:
                raise
            for error in problem.errors:
                check.add(error["loc"], error["msg"])
            check.valid = False
        else:
            return RedirectResponse(f"/d/{dep}/runs/{created['id']}", status_code=303)
    return page(
        request,
        "launchpad.html",
        signed,
        status_code=422,
        dep=await deployment(signed, dep),
        choices=await _choices(signed, dep),
        location=location,
        job=job,
        check=check,
        config_text=config,
        fmt=fmt,
        tags_text=tags,
        section="launchpad",
    )


def _fmt(value: str) -> str:
    return value if value in FORMATS else "json"
