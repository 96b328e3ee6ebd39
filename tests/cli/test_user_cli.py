"""The user commands (deploy, locations, runs ...) run as subprocesses against a real control
plane. There is no agent: the tests post the agent's status reports and the run worker's
events themselves."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Tenant, client, event, free_port, wait_until
from tether_api.channels import CHANNEL_KINDS
from tether_sdk.examples import quickstart

SNAPSHOT = quickstart.defs.snapshot().model_dump(mode="json")
QUICK = ["--module", "tether_sdk.examples.quickstart"]

Cli = Callable[..., subprocess.CompletedProcess[str]]
Spawn = Callable[..., subprocess.Popen[str]]


def _env(tenant: Tenant, home: Path, **overrides: str | None) -> dict[str, str]:
    # Nothing from the outer environment (a developer's TETHER_TOKEN) may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env.update(
        TETHER_URL=tenant.cp.url,
        TETHER_TOKEN=tenant.user_token,
        TETHER_DEPLOYMENT=tenant.deployment,
        TETHER_HOME=str(home),
        COLUMNS="200",
        NO_COLOR="1",
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _argv(args: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "tether_cli.main", *args]


@pytest.fixture
def cli(tenant: Tenant, tmp_path: Path) -> Cli:
    def run(*args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _argv(args),
            env=_env(tenant, tmp_path, **env),
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


@pytest.fixture
def spawn(tenant: Tenant, tmp_path: Path) -> Iterator[Spawn]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, **env: str | None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            _argv(args),
            env=_env(tenant, tmp_path, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _report(tenant: Tenant, name: str, **body: Any) -> None:
    with tenant.agent() as c:
        r = c.post(f"/api/v1/agent/code-locations/{name}/status", json=body)
        assert r.status_code == 200, r.text


def _location(tenant: Tenant, name: str) -> dict[str, Any] | None:
    with tenant.user() as c:
        r = c.get(f"{tenant.dep_path}/code-locations/{name}")
        return r.json() if r.status_code == 200 else None


def _post_events(tenant: Tenant, run_id: str, token: str, *events: dict[str, Any]) -> None:
    with client(tenant.cp.url, token) as w:
        r = w.post(f"/api/v1/runs/{run_id}/events", json={"events": list(events)})
        assert r.status_code == 200, r.text


def _finish(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


# --- code locations -----------------------------------------------------------------------


def test_deploy_no_wait_then_locations(cli: Cli) -> None:
    r = cli(
        "deploy",
        "quick",
        *QUICK,
        "--env",
        "A=1=2",
        "--passthrough-env",
        "SECRET",
        "--command",
        "tether code-server --module 'my mod'",
        "--no-wait",
    )
    assert r.returncode == 0, r.stderr
    assert "generation 1 deployed" in r.stdout
    r = cli("locations", "--json")
    assert r.returncode == 0, r.stderr
    [loc] = json.loads(r.stdout)
    assert (loc["name"], loc["status"], loc["generation"]) == ("quick", "PENDING", 1)
    assert loc["spec"]["env"] == {"A": "1=2"} and loc["spec"]["passthrough_env"] == ["SECRET"]
    assert loc["spec"]["command"] == ["tether", "code-server", "--module", "my mod"]
    table = cli("locations")
    assert "quick" in table.stdout and "PENDING" in table.stdout
    again = cli("deploy", "quick", *QUICK, "--env", "A=1=2", "--passthrough-env", "SECRET",
                "--command", "tether code-server --module 'my mod'", "--no-wait",
                "--only-if-changed", "--json")  # fmt: skip
    assert json.loads(again.stdout)["changed"] is False
    # Without --only-if-changed, the same spec is deployed anew: its code may have changed.
    fresh = cli("deploy", "quick", *QUICK, "--env", "A=1=2", "--passthrough-env", "SECRET",
                "--command", "tether code-server --module 'my mod'", "--no-wait",
                "--json")  # fmt: skip
    result = json.loads(fresh.stdout)
    assert result["changed"] is True and result["code_location"]["generation"] == 2
    assert cli("remove", "quick").returncode == 0
    assert json.loads(cli("locations", "--json").stdout) == []


def test_deploy_checks_its_input_locally(cli: Cli) -> None:
    both = cli("deploy", "x", "--module", "m", "--python-file", "f.py")
    assert both.returncode == 2 and "exactly one of 'module'" in both.stderr
    neither = cli("deploy", "x")
    assert neither.returncode == 2 and "exactly one of 'module'" in neither.stderr
    bad_env = cli("deploy", "x", *QUICK, "--env", "NOEQUALS")
    assert bad_env.returncode == 2 and "--env 'NOEQUALS' is not KEY=VALUE" in bad_env.stderr
    # What only the server checks comes back with its message.
    bad_name = cli("deploy", "bad:name", *QUICK, "--no-wait")
    assert bad_name.returncode == 1 and bad_name.stderr.startswith("error: ")


def test_deploy_wait_times_out_without_an_agent(cli: Cli) -> None:
    r = cli("deploy", "quick", *QUICK, "--timeout", "1")
    assert r.returncode == 3, r.stderr
    assert "timed out after 1.0 s" in r.stderr and "last status PENDING" in r.stderr
    assert "no live agent serves agent queue 'default' (no agent is live)" in r.stderr


def test_deploy_waits_for_running_of_this_generation(
    cli: Cli, spawn: Spawn, tenant: Tenant
) -> None:
    proc = spawn("deploy", "quick", *QUICK, "--timeout", "30")
    wait_until(lambda: _location(tenant, "quick"), what="the PUT")
    _report(tenant, "quick", status="STARTING", generation=1)
    _report(tenant, "quick", status="RUNNING", snapshot=SNAPSHOT, generation=1)
    code, out, err = _finish(proc)
    assert code == 0, err
    assert "quick is RUNNING: generation 1, 2 jobs" in out
    # The same spec again with --only-if-changed: already RUNNING, done at once.
    same = cli("deploy", "quick", *QUICK, "--only-if-changed", "--json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["changed"] is False
    # Without it, the same spec is a new generation: generation 1's RUNNING does not count.
    again = cli("deploy", "quick", *QUICK, "--timeout", "1.5")
    assert again.returncode == 3, again.stderr
    assert "generation 2" in again.stderr and "RUNNING (not yet synced)" in again.stderr
    # A changed spec: the RUNNING of generation 1 must not pass for generation 3's.
    stale = cli("deploy", "quick", *QUICK, "--env", "B=2", "--timeout", "1.5")
    assert stale.returncode == 3, stale.stderr
    assert "generation 3" in stale.stderr and "RUNNING (not yet synced)" in stale.stderr
    # A late report about generation 3 is ignored; generation 4's ends a redeploy's wait.
    proc = spawn("redeploy", "quick", "--wait", "--timeout", "30")
    wait_until(lambda: (_location(tenant, "quick") or {}).get("generation") == 4, what="redeploy")
    _report(tenant, "quick", status="RUNNING", generation=3)
    _report(tenant, "quick", status="RUNNING", snapshot=SNAPSHOT, generation=4)
    code, out, err = _finish(proc)
    assert code == 0, err
    assert "generation 4" in out


def test_deploy_reports_the_error_and_log_tail(spawn: Spawn, tenant: Tenant) -> None:
    proc = spawn("deploy", "broken", "--python-file", "defs.py", "--timeout", "30")
    wait_until(lambda: _location(tenant, "broken"), what="the PUT")
    _report(
        tenant,
        "broken",
        status="ERROR",
        message="ImportError: no module named 'pandas'",
        log_tail=["Traceback (most recent call last):", "  [in defs.py line 3]"],
        generation=1,
    )
    code, _, err = _finish(proc)
    assert code == 1
    assert "[in defs.py line 3]" in err  # a log line is printed as text, not Rich markup
    assert err.rstrip().endswith("failed (generation 1): ImportError: no module named 'pandas'")


# --- runs ---------------------------------------------------------------------------------


def test_launch_list_logs_terminate(cli: Cli, tenant: Tenant, tmp_path: Path) -> None:
    tenant.deploy("quick")
    _report(tenant, "quick", status="RUNNING", snapshot=SNAPSHOT, generation=1)
    config = tmp_path / "config.json"
    config.write_text('{"source": "s3://a", "rows": 3}')
    r = cli(
        "runs", "launch", "quick", "etl", "--config", str(config),
        "--config-json", '{"rows": 5}', "--tag", "team=data",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    run_id = r.stdout.strip()
    run = tenant.run(run_id)
    assert run["run_config"] == {"source": "s3://a", "rows": 5}
    assert run["tags"] == {"team": "data"}

    listed = cli("runs", "list", "--json", "--tag", "team=data", "--status", "starting")
    assert [x["id"] for x in json.loads(listed.stdout)] == [run_id]
    assert json.loads(cli("runs", "list", "--json", "--status", "SUCCESS").stdout) == []
    table = cli("runs", "list", "--location", "quick")
    assert run_id in table.stdout and "STARTING" in table.stdout

    token = tenant.run_token(run_id)
    _post_events(
        tenant,
        run_id,
        token,
        event(1, "RUN_START"),
        event(2, "LOG", "reading [3] rows", step="extract", level="INFO"),
    )
    logs = cli("runs", "logs", run_id)
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert len(lines) == 2 and lines[0].endswith(" RUN_START")
    assert lines[1].endswith(" LOG INFO [extract] reading [3] rows")
    assert cli("runs", "logs", run_id, "--after", "1").stdout.splitlines() == lines[1:]

    other = cli("runs", "launch", "quick", "etl", "--config-json", '{"source": "x"}').stdout.strip()
    terminated = cli("runs", "terminate", other)
    assert terminated.returncode == 0 and "CANCELING" in terminated.stdout
    assert tenant.run(other)["status"] == "CANCELING"
    _post_events(tenant, other, tenant.run_token(other), event(1, "RUN_CANCELED"))
    finished = cli("runs", "logs", other, "--follow")
    assert finished.returncode == 1 and "CANCELED" in finished.stdout
    again = cli("runs", "terminate", other)
    assert again.returncode == 0 and "CANCELED" in again.stdout


def test_logs_pages_through_every_event(cli: Cli, tenant: Tenant) -> None:
    tenant.deploy("quick")
    run_id = tenant.launch("quick")["id"]
    many = [event(seq, "LOG", f"line {seq}") for seq in range(1, 1206)]
    _post_events(tenant, run_id, tenant.run_token(run_id), *many, event(1206, "LOG", "a\nb"))
    r = cli("runs", "logs", run_id)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1207
    assert lines[0].endswith(" LOG line 1") and lines[1204].endswith(" LOG line 1205")
    assert lines[-2].endswith(" LOG a") and lines[-1] == " " * 13 + "b"


def test_logs_follow_streams_until_the_run_ends(spawn: Spawn, tenant: Tenant) -> None:
    tenant.deploy("quick")
    run_id = tenant.launch("quick")["id"]
    token = tenant.run_token(run_id)
    _post_events(tenant, run_id, token, event(1, "RUN_START"))
    proc = spawn("runs", "logs", run_id, "--follow")
    assert proc.stdout is not None
    assert proc.stdout.readline().rstrip().endswith("RUN_START")
    # Live part: events posted after the command started arrive, and the end ends it.
    _post_events(tenant, run_id, token, event(2, "LOG", "live", level="INFO"))
    _post_events(tenant, run_id, token, event(3, "RUN_SUCCESS", "done"))
    code, out, err = _finish(proc)
    assert code == 0, err
    assert out.splitlines()[0].endswith("LOG INFO live")
    assert out.splitlines()[1].endswith("RUN_SUCCESS done")
    assert "SUCCESS" in out.splitlines()[2]


def test_launch_follow_and_failure_exit_code(spawn: Spawn, tenant: Tenant) -> None:
    tenant.deploy("quick")
    proc = spawn("runs", "launch", "quick", "etl", "--follow")
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    token = tenant.run_token(run_id)
    _post_events(tenant, run_id, token, event(1, "RUN_START"), event(2, "RUN_FAILURE", "boom"))
    code, out, _ = _finish(proc)
    assert code == 1
    assert "RUN_FAILURE boom" in out and "FAILURE" in out.splitlines()[-1]


class _DroppingProxy:
    """A TCP proxy whose open connections can be cut, as a load balancer or a network blip
    would."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        # Connections whose answer is lost: the request reaches the server, which acts on
        # it, and the connection is cut before the answer gets back (a replica dying).
        self.answers_to_lose = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.sockets += [downstream, upstream]
                lose = self.answers_to_lose > 0
                self.answers_to_lose -= lose
            threading.Thread(target=self._pipe, args=(downstream, upstream), daemon=True).start()
            back = self._lose if lose else self._pipe
            threading.Thread(target=back, args=(upstream, downstream), daemon=True).start()

    @staticmethod
    def _lose(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            source.recv(65536)  # the server has answered: it did what was asked
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def drop(self) -> None:
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self.sockets.clear()

    def close(self) -> None:
        self.listener.close()
        self.drop()


def test_logs_follow_resumes_after_a_dropped_connection(spawn: Spawn, tenant: Tenant) -> None:
    tenant.deploy("quick")
    run_id = tenant.launch("quick")["id"]
    token = tenant.run_token(run_id)
    _post_events(tenant, run_id, token, event(1, "RUN_START"), event(2, "LOG", "before"))
    proxy = _DroppingProxy(tenant.cp.port)
    try:
        proc = spawn(
            "runs", "logs", run_id, "--follow", TETHER_URL=f"http://127.0.0.1:{proxy.port}"
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().rstrip().endswith("RUN_START")
        assert proc.stdout.readline().rstrip().endswith("LOG before")
        proxy.drop()
        _post_events(tenant, run_id, token, event(3, "LOG", "after"), event(4, "RUN_SUCCESS"))
        code, out, err = _finish(proc)
    finally:
        proxy.close()
    assert code == 0, err
    assert "resuming after event 2" in err
    # Each event once: the reconnect resumed after the last one received.
    assert [line.split()[1] for line in out.splitlines()[:2]] == ["LOG", "RUN_SUCCESS"]


def test_a_launch_whose_answer_is_lost_is_sent_again_and_makes_one_run(
    cli: Cli, tenant: Tenant
) -> None:
    tenant.deploy("quick")
    proxy = _DroppingProxy(tenant.cp.port)
    proxy.answers_to_lose = 1
    try:
        result = cli("runs", "launch", "quick", "etl", TETHER_URL=f"http://127.0.0.1:{proxy.port}")
    finally:
        proxy.close()
    assert result.returncode == 0, result.stderr
    assert proxy.answers_to_lose == 0  # the first answer was lost
    with tenant.user() as c:
        runs = c.get(f"{tenant.dep_path}/runs").json()["runs"]
    assert [r["id"] for r in runs] == [result.stdout.strip()]  # one run, the one printed
    assert runs[0]["idempotency_key"].startswith("cli:")
    # A script's own key: the command run again prints the same run and makes none.
    first = cli("runs", "launch", "quick", "etl", "--idempotency-key", "nightly-2026-12-06")
    again = cli("runs", "launch", "quick", "etl", "--idempotency-key", "nightly-2026-12-06")
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert first.stdout == again.stdout
    with tenant.user() as c:
        assert len(c.get(f"{tenant.dep_path}/runs").json()["runs"]) == 2


def test_launch_config_errors(cli: Cli, tenant: Tenant, tmp_path: Path) -> None:
    tenant.deploy("quick")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "source": "x",\n}\n')
    r = cli("runs", "launch", "quick", "etl", "--config", str(bad))
    assert r.returncode == 2
    assert f"{bad}: invalid JSON at line 3 column 1" in r.stderr
    r = cli("runs", "launch", "quick", "etl", "--config-json", "[1]")
    assert r.returncode == 2 and "must be an object" in r.stderr
    r = cli("runs", "launch", "quick", "etl", "--tag", "novalue")
    assert r.returncode == 2 and "--tag 'novalue' is not KEY=VALUE" in r.stderr
    missing = cli("runs", "launch", "nowhere", "etl")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: code location 'nowhere' not found")
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("source: x\n")
    r = cli("runs", "launch", "quick", "etl", "--config", str(yaml_file))
    try:
        import yaml  # noqa: F401
    except ImportError:
        assert r.returncode == 2 and "PyYAML" in r.stderr
    else:
        assert r.returncode == 0 and tenant.run(r.stdout.strip())["run_config"] == {"source": "x"}


TRACEBACK = (
    'Traceback (most recent call last):\n  File "etl.py", line 9, in load\nRuntimeError: boom\n'
)


def _failed_run(tenant: Tenant, *more: dict[str, Any]) -> str:
    """A run of quickstart's etl whose load step failed with a traceback (then ``more``)."""
    run = tenant.launch("quick", "etl", run_config={"source": "s3://b"}, tags={"team": "d"})
    run_id: str = run["id"]
    _post_events(
        tenant,
        run_id,
        tenant.run_token(run_id),
        event(1, "RUN_START"),
        event(2, "STEP_START", step="extract"),
        event(3, "STEP_SUCCESS", step="extract", data={"duration_s": 1.5}),
        event(4, "STEP_START", step="load"),
        event(5, "STEP_FAILURE", "step 'load' failed: RuntimeError: boom", step="load",
              data={"error": "RuntimeError: boom", "traceback": TRACEBACK}),
        event(6, "STEP_SKIPPED", "skipped: upstream step 'load' did not succeed", step="report"),
        *more,
        event(9, "RUN_FAILURE", "steps failed: load"),
    )  # fmt: skip
    return run_id


def test_runs_show(cli: Cli, tenant: Tenant) -> None:
    tenant.deploy("quick")
    _report(tenant, "quick", status="RUNNING", snapshot=SNAPSHOT, generation=1)
    run_id = _failed_run(tenant)
    r = cli("runs", "show", run_id)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"run         {run_id}" in lines and "status      FAILURE" in lines
    assert "job         etl" in lines and "tags        team=d" in lines
    assert '              "source": "s3://b"' in lines  # the config, indented under its name
    rows = [line.split("│")[1:5] for line in lines if line.startswith("│")]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["extract", "SUCCESS", rows[0][2].strip(), "1.5 s"],
        ["load", "FAILURE", rows[1][2].strip(), rows[1][3].strip()],
        ["report", "SKIPPED", "-", "-"],
    ]
    assert rows[1][3].strip().endswith(" ms")  # a short duration in milliseconds, not "0.0s"
    assert "error: step 'load' failed: RuntimeError: boom" in lines
    assert '  File "etl.py", line 9, in load' in lines  # the whole traceback
    assert "error: steps failed: load" in lines

    shown = json.loads(cli("runs", "show", run_id, "--json").stdout)
    assert shown["run"]["id"] == run_id and shown["run"]["status"] == "FAILURE"
    assert [(s["name"], s["status"], s["duration_seconds"]) for s in shown["steps"]] == [
        ("extract", "SUCCESS", 1.5), ("load", "FAILURE", 0.0), ("report", "SKIPPED", None),
    ]  # fmt: skip
    assert shown["steps"][1]["traceback"] == TRACEBACK
    assert [(e["step"], e["traceback"]) for e in shown["errors"]] == [
        ("load", TRACEBACK), (None, None),
    ]  # fmt: skip

    # A run still going lists the steps it has not reached yet.
    queued = tenant.launch("quick", "etl", run_config={"source": "s3://b"})["id"]
    steps = json.loads(cli("runs", "show", queued, "--json").stdout)["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [
        (name, "PENDING") for name in ("extract", "transform", "load", "report")
    ]
    missing = cli("runs", "show", "nope")
    assert missing.returncode == 1 and "run 'nope' not found" in missing.stderr
    # A config that does not fit the job's schema is refused at launch, naming each field.
    bad = cli("runs", "launch", "quick", "etl", "--config-json", '{"rows": "x"}')
    assert bad.returncode == 1 and bad.stderr.rstrip().endswith(
        "run_config.rows: 'x' is not of type 'integer'; run_config.source: Field required"
    )


def test_logs_print_tracebacks(cli: Cli, tenant: Tenant) -> None:
    tenant.deploy("quick")
    # A message that already holds its traceback is printed once.
    said = event(8, "LOG", f"worker said:\n{TRACEBACK}", data={"traceback": TRACEBACK})
    run_id = _failed_run(tenant, said)
    r = cli("runs", "logs", run_id)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    failure = next(i for i, line in enumerate(lines) if " STEP_FAILURE " in line)
    assert lines[failure + 1 : failure + 4] == [
        " " * 13 + "Traceback (most recent call last):",
        " " * 13 + '  File "etl.py", line 9, in load',
        " " * 13 + "RuntimeError: boom",
    ]
    assert lines[failure + 4].endswith(
        "STEP_SKIPPED [report] skipped: upstream step 'load' did not succeed"
    )
    assert r.stdout.count("RuntimeError: boom\n") == 3  # the step's line, its traceback, the log


def test_locations_show(cli: Cli, tenant: Tenant) -> None:
    tenant.deploy("quick", module="tether_sdk.examples.quickstart", agent_queue="etl")
    pending = cli("locations", "show", "quick")
    assert pending.returncode == 0, pending.stderr
    assert "module      tether_sdk.examples.quickstart" in pending.stdout
    assert "agent queue etl" in pending.stdout and "no definitions reported yet" in pending.stderr
    _report(tenant, "quick", status="RUNNING", snapshot=SNAPSHOT, generation=1)
    r = cli("locations", "show", "quick")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "status      RUNNING" in lines and "generation  1" in lines
    assert "job etl: Extract, transform and load some numbers." in lines
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if line.startswith("│")]
    assert ["transform", "extract", "", "Double every value (slowly, if asked to)."] in cells
    # The config schema as fields: name, type, required, default, description.
    assert [
        "source",
        "string",
        "yes",
        "",
        "Where to read from, e.g. s3://bucket/orders.csv",
    ] in cells
    assert ["rows", "integer", "", "10", ""] in cells
    assert "refresh_sales takes no config" in lines
    assert ["order_totals", "sales", "raw_orders", "Order amount per region."] in cells
    assert [
        "nightly_etl",
        "0 3 * * *",
        "UTC",
        "etl",
        '{"source": "s3://example/orders.csv"}',
    ] in cells
    minute = "1 min 00 s"  # durations as tether_api/durations.py writes them
    assert ["hourly_sales_refresh", "standard", "refresh_sales", minute, minute] in cells
    as_json = json.loads(cli("locations", "show", "quick", "--json").stdout)
    assert as_json["name"] == "quick" and as_json["snapshot"] == SNAPSHOT
    # The list is still `tether locations`, and `tether locations list`.
    assert [x["name"] for x in json.loads(cli("locations", "--json").stdout)] == ["quick"]
    assert [x["name"] for x in json.loads(cli("locations", "list", "--json").stdout)] == ["quick"]
    missing = cli("locations", "show", "ghost")
    assert missing.returncode == 1 and "code location 'ghost' not found" in missing.stderr


def test_locations_show_the_error_and_log_tail(cli: Cli, tenant: Tenant) -> None:
    tenant.deploy("broken", python_file="defs.py", image="example:1")
    _report(tenant, "broken", status="ERROR", message="ImportError: no module named 'pandas'",
            log_tail=["Traceback (most recent call last):", "  [in defs.py line 3]"],
            generation=1)  # fmt: skip
    r = cli("locations", "show", "broken")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "image       example:1" in lines and "python file defs.py" in lines
    assert "error       ImportError: no module named 'pandas'" in lines
    assert lines[-2:] == ["Traceback (most recent call last):", "  [in defs.py line 3]"]


def test_agents(cli: Cli, tenant: Tenant) -> None:
    none = cli("agents")
    assert none.returncode == 0 and "no agent has connected" in none.stderr
    with tenant.agent() as c:
        for name, queues in (("b-agent", ["default"]), ("a-agent", ["default", "gpu"])):
            body = {"agent_name": name, "version": "1.2.3", "launcher": "docker", "queues": queues}
            assert c.post("/api/v1/agent/heartbeat", json=body).status_code == 200
    r = cli("agents")
    assert r.returncode == 0, r.stderr
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in r.stdout.splitlines()
             if line.startswith("│")]  # fmt: skip
    assert [row[:5] for row in cells] == [
        ["a-agent", "yes", "1.2.3", "docker", "default, gpu"],
        ["b-agent", "yes", "1.2.3", "docker", "default"],
    ]
    assert cells[0][5].endswith(" ago)")
    listed = json.loads(cli("agents", "--json").stdout)
    assert sorted(a["name"] for a in listed) == ["a-agent", "b-agent"]
    assert all(a["available"] for a in listed)


# --- connection ---------------------------------------------------------------------------


def test_missing_token(cli: Cli) -> None:
    r = cli("locations", TETHER_TOKEN=None)
    assert r.returncode == 2
    assert "no user token: pass --token or set TETHER_TOKEN (`tether dev` prints one)" in r.stderr


def test_unreachable_control_plane(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    r = cli("runs", "list", TETHER_URL=url)
    assert r.returncode == 1
    assert f"cannot reach the control plane at {url}: " in r.stderr
    assert "is it running? (`tether dev` or `tether controlplane serve`)" in r.stderr


def test_dev_json_fallback_and_precedence(cli: Cli, tenant: Tenant, tmp_path: Path) -> None:
    tenant.deploy("quick")
    (tmp_path / "dev.json").write_text(
        json.dumps(
            {
                "url": tenant.cp.url,
                "user_token": tenant.user_token,
                "deployment": tenant.deployment,
                "organization": tenant.org,
            }
        )
    )
    unset: dict[str, str | None] = {"TETHER_URL": None, "TETHER_TOKEN": None}
    r = cli("locations", "--json", **unset, TETHER_DEPLOYMENT=None)
    assert r.returncode == 0, r.stderr
    assert [x["name"] for x in json.loads(r.stdout)] == ["quick"]
    # The environment beats the file, and a flag beats the environment.
    r = cli("locations", **unset, TETHER_DEPLOYMENT="staging")
    assert r.returncode == 1 and "'staging'" in r.stderr
    r = cli("locations", "--json", "--deployment", tenant.deployment, **unset,
            TETHER_DEPLOYMENT="staging")  # fmt: skip
    assert r.returncode == 0, r.stderr
    (tmp_path / "dev.json").write_text("{oops")
    r = cli("locations", **unset)
    assert r.returncode == 2 and "dev.json" in r.stderr


def test_deploy_takes_a_container_context(cli: Cli) -> None:
    context = '{"memory": "512m", "volumes": [{"source": "data", "target": "/data"}]}'
    r = cli("deploy", "boxed", *QUICK, "--image", "example:1", "--container-json", context,
            "--no-wait", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    spec = json.loads(r.stdout)["code_location"]["spec"]
    assert spec["image"] == "example:1"
    assert spec["container"]["memory"] == "512m"
    assert spec["container"]["volumes"] == [
        {"source": "data", "target": "/data", "read_only": False}
    ]
    bad = cli("deploy", "boxed", *QUICK, "--container-json", '{"memory": "lots"}')
    assert bad.returncode == 2 and "--container-json: memory:" in bad.stderr


def test_schedules_list_on_off_and_ticks(tenant: Tenant, cli: Cli) -> None:
    assert cli("deploy", "quick", *QUICK, "--no-wait").returncode == 0
    with tenant.agent() as agent:
        r = agent.post(
            "/api/v1/agent/code-locations/quick/status",
            json={"status": "RUNNING", "snapshot": SNAPSHOT},
        )
        assert r.status_code == 200, r.text
    listed = cli("schedules", "list")
    assert listed.returncode == 0, listed.stderr
    assert "nightly_etl" in listed.stdout and "STOPPED" in listed.stdout
    assert "0 3 * * * (UTC)" in listed.stdout
    on = cli("schedules", "on", "nightly_etl")
    assert on.returncode == 0 and "RUNNING" in on.stdout and "next tick" in on.stdout
    as_json = json.loads(cli("schedules", "list", "--json").stdout)
    assert as_json[0]["status"] == "RUNNING" and as_json[0]["status_set_by_user"] is True
    assert cli("schedules", "off", "nightly_etl").returncode == 0
    ticks = cli("schedules", "ticks", "nightly_etl", "--json")
    assert ticks.returncode == 0 and json.loads(ticks.stdout) == []
    missing = cli("schedules", "on", "nope")
    assert missing.returncode == 1 and "tether schedules list" in missing.stderr


def test_alerts_sync_list_test_and_sent(tenant: Tenant, cli: Cli, tmp_path: Path) -> None:
    policies = tmp_path / "alerts.yaml"
    policies.write_text(
        "policies:\n"
        "  failures:\n"
        "    events: [run_failure, location_error]\n"
        "    jobs: [etl]\n"
        "    channel: {type: webhook, url: 'http://127.0.0.1:9/hook', secret: '${HOOK_SECRET}'}\n"
        "  old: {events: [run_success], channel: {type: webhook, url: 'http://127.0.0.1:9/x'}}\n"
    )
    unset = cli("alerts", "sync", str(policies))
    assert unset.returncode == 2 and "${HOOK_SECRET} is not set" in unset.stderr
    synced = cli("alerts", "sync", str(policies), HOOK_SECRET="s" * 20)
    assert synced.returncode == 0, synced.stderr
    assert "created failures" in synced.stdout and "created old" in synced.stdout
    policies.write_text(policies.read_text().split("  old:")[0])
    resynced = cli("alerts", "sync", str(policies), HOOK_SECRET="s" * 20)
    assert "updated failures" in resynced.stdout and "deleted old" in resynced.stdout
    listed = cli("alerts", "list", "--json")
    [policy] = json.loads(listed.stdout)
    assert policy["name"] == "failures" and policy["channel"]["secret"] == "*" * 16
    assert cli("alerts", "test", "failures").returncode == 0
    sent = json.loads(cli("alerts", "sent", "--json").stdout)
    assert sent[0]["event"] == "test" and sent[0]["policy"] == "failures"
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies:\n  x: {events: [nope], channel: {type: webhook, url: 'h'}}\n")
    refused = cli("alerts", "sync", str(bad))
    assert refused.returncode == 2 and "policy 'x'" in refused.stderr and "events" in refused.stderr


def test_alerts_sync_reads_a_variable_as_the_field_wants_it(
    tenant: Tenant, cli: Cli, tmp_path: Path
) -> None:
    """The API refuses "587" for a port and "false" for a boolean; a YAML file that takes
    them from the environment (``smtp_port: ${SMTP_PORT}``) still means the number and the
    boolean, while a string field keeps its variable's text (a secret of digits)."""
    policies = tmp_path / "alerts.yaml"
    policies.write_text(
        "policies:\n"
        "  mail:\n"
        "    events: [run_failure]\n"
        "    enabled: ${ALERTS_ON}\n"
        "    channel: {type: email, smtp_host: mail.example.com, smtp_port: '${SMTP_PORT}',\n"
        "              starttls: '${STARTTLS}', sender: tether@example.com,\n"
        "              recipients: [ops@example.com]}\n"
        "  hook:\n"
        "    events: [run_failure]\n"
        "    channel: {type: webhook, url: 'http://127.0.0.1:9/hook', secret: '${HOOK_SECRET}'}\n"
    )
    env = {
        "ALERTS_ON": "true",
        "SMTP_PORT": "2525",
        "STARTTLS": "false",
        "HOOK_SECRET": "1234567890123456789",
    }
    synced = cli("alerts", "sync", str(policies), **env)
    assert synced.returncode == 0, synced.stderr
    listed = {p["name"]: p for p in json.loads(cli("alerts", "list", "--json").stdout)}
    mail = listed["mail"]
    assert mail["enabled"] is True
    assert mail["channel"]["smtp_port"] == 2525 and mail["channel"]["starttls"] is False
    assert listed["hook"]["channel"]["secret"] == "*" * 16  # stored, as a string
    # The table: each kind's channel as tether_api.channels summarises it, a URL to its host.
    assert {p["channel"]["type"] for p in listed.values()} == set(CHANNEL_KINDS)
    table = cli("alerts", "list")
    assert table.returncode == 0, table.stderr
    assert "e-mail to ops@example.com" in table.stdout
    assert f"webhook to http://127.0.0.1:9/{'*' * 16}" in table.stdout
    assert "/hook" not in table.stdout
    bad = cli("alerts", "sync", str(policies), **{**env, "SMTP_PORT": "smtp"})
    assert bad.returncode == 2 and "smtp_port" in bad.stderr


def test_the_cli_dispatches_the_sdk_commands_the_sdk_has() -> None:
    """tether_cli.main spells the SDK's commands itself (the CLI's other commands do not
    import the SDK); they must be the SDK's."""
    from tether_cli import main as cli_main
    from tether_sdk import cli as sdk_cli

    assert cli_main.SDK_COMMANDS == sdk_cli.SDK_COMMANDS
