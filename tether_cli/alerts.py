"""``tether alerts sync|list|test|sent``: alert policies kept in a YAML file, like code.

The file (``tether alerts sync alerts.yaml``)::

    policies:
      etl-failures:
        events: [run_failure]
        jobs: [etl]
        channel:
          type: webhook
          url: https://hooks.example.com/tether
          secret: ${TETHER_ALERT_SECRET}   # from the environment: keep secrets out of git

Every policy in the file is created or replaced; policies not in it are deleted (unless
``--keep-others``). ``${NAME}`` is replaced by the environment variable NAME, which must be set.
"""

import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from tether_api.alerts import AlertPolicySpec
from tether_api.channels import summary
from tether_api.names import check_name
from tether_cli.client import TetherClient
from tether_cli.context import Connection, DeploymentOption, TokenOption, UrlOption
from tether_cli.render import (
    JsonOption,
    UsageProblem,
    errors,
    local_time,
    note,
    out,
    print_json,
    print_table,
    styled_status,
    validation_message,
)

app = typer.Typer(help="Alert policies (synced from a YAML file) and the alerts they sent.")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):

        def variable(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise UsageProblem(f"{where}: ${{{name}}} is not set in the environment")
            return os.environ[name]

        whole = _VARIABLE.fullmatch(value)
        if whole is not None:
            return _Variable(variable(whole))
        return _VARIABLE.sub(variable, value)
    return value


class _Variable(str):
    """A value that was one ``${NAME}`` and nothing else: YAML never saw its text, so a
    number or a boolean in it is still a string. ``_typed`` reads it as YAML would where the
    field wants one (``smtp_port: ${SMTP_PORT}``); a string field keeps the text as it is (a
    secret of digits stays a string)."""


def _plain(value: Any) -> Any:
    """The expanded tree with plain strings: pydantic takes a str subclass for no string."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, _Variable) else value


def _typed(expanded: Any, plain: Any, exc: ValidationError) -> bool:
    """In ``plain``, read as YAML scalars the whole-variable values (marked in ``expanded``)
    that the validation refused; True when one changed (validate again)."""
    changed = False
    for error in exc.errors():
        *parents, last = error["loc"] or (None,)
        marked, node = expanded, plain
        for key in parents:
            if isinstance(node, dict) and key not in node:
                continue  # a union's tag in the location (channel.email.smtp_port)
            try:
                marked, node = marked[key], node[key]
            except (KeyError, IndexError, TypeError):
                node = None
                break
        if not isinstance(node, dict | list):
            continue
        try:
            value = marked[last]
        except (KeyError, IndexError, TypeError):
            continue
        if isinstance(value, _Variable):
            scalar = yaml.safe_load(str(value))
            if isinstance(scalar, int | float | bool):
                node[last] = scalar  # type: ignore[index]
                changed = True
    return changed


def load_policies(path: Path) -> dict[str, AlertPolicySpec]:
    """The policies of a YAML file, checked: a mistake names the policy and the field."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UsageProblem(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("policies"), dict):
        raise UsageProblem(f"{path}: expected a mapping 'policies:' of name -> policy")
    found = {}
    for name, spec in raw["policies"].items():
        try:
            check_name(str(name), "policy name")
        except ValueError as exc:
            raise UsageProblem(f"{path}: {exc}") from None
        expanded = _expand(spec, f"policies.{name}")
        plain = _plain(expanded)
        try:
            try:
                found[str(name)] = AlertPolicySpec.model_validate(plain)
            except ValidationError as exc:
                if not _typed(expanded, plain, exc):
                    raise
                found[str(name)] = AlertPolicySpec.model_validate(plain)
        except ValidationError as exc:
            raise UsageProblem(f"{path}: policy {name!r}: {validation_message(exc)}") from None
    return found


@app.command("sync")
def sync(
    file: Annotated[Path, typer.Argument(help="The YAML file of policies.")],
    keep_others: Annotated[
        bool, typer.Option("--keep-others", help="Do not delete policies missing from the file.")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Make the deployment's alert policies those of FILE."""
    with errors():
        wanted = load_policies(file)
        with TetherClient(Connection.resolve(url, token, deployment)) as client:
            existing = {p.name for p in client.list_policies()}
            for name, spec in wanted.items():
                client.put_policy(name, spec)
                out.print(f"{'updated' if name in existing else 'created'} {escape(name)}")
            if not keep_others:
                for name in sorted(existing - set(wanted)):
                    client.delete_policy(name)
                    out.print(f"deleted {escape(name)}")


@app.command("list")
def list_policies(
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """The alert policies: events, filters and channel (secrets are never shown)."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = client.list_policies()
    if json_output:
        print_json(found)
        return
    if not found:
        note("no alert policies: write a file and run `tether alerts sync FILE`")
        return
    table = Table("name", "enabled", "events", "filters", "channel")
    for p in found:
        filters = ", ".join(
            [
                *(f"job={j}" for j in p.jobs),
                *(f"location={loc}" for loc in p.code_locations),
                *(f"tag {k}={v}" for k, v in p.tags.items()),
            ]
        )
        table.add_row(
            escape(p.name),
            "yes" if p.enabled else "no",
            escape(", ".join(e.value for e in p.events)),
            escape(filters or "-"),
            escape(summary(p.channel)),
        )
    print_table(table)


@app.command("test")
def test(
    name: Annotated[str, typer.Argument(help="The policy.")],
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """Send a test alert through a policy's channel; `tether alerts sent` shows how it went."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        alert = client.test_policy(name)
    out.print(f"test alert {escape(alert.id)} queued; see `tether alerts sent`")


@app.command("sent")
def sent(
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    json_output: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    deployment: DeploymentOption = None,
) -> None:
    """The alerts fired, newest first, with their delivery: DELIVERED, PENDING (retrying,
    with the last error) or FAILED."""
    with errors(), TetherClient(Connection.resolve(url, token, deployment)) as client:
        found = client.list_alerts(limit)
    if json_output:
        print_json(found)
        return
    table = Table("when", "policy", "event", "delivery", "attempts", "summary")
    for a in found:
        delivery = styled_status(a.status) + (f" {escape(a.last_error)}" if a.last_error else "")
        table.add_row(
            local_time(a.created_at),
            escape(a.policy),
            a.event.value,
            delivery,
            str(a.attempts),
            escape(a.summary),
        )
    print_table(table)
