"""The run worker's EventSink against the real control plane: large and odd payloads."""

from tests.support import Tenant
from tether_api.enums import EventType
from tether_sdk.run_worker.client import ControlPlaneClient
from tether_sdk.run_worker.sink import EventSink


def test_huge_non_ascii_log_lines_are_all_delivered(tenant: Tenant) -> None:
    """300 lines of 60,000 CJK characters (about 54 MB as UTF-8) exceed any single request:
    the sink splits them by size instead of having a whole batch refused."""
    tenant.deploy()
    run = tenant.launch()["id"]
    client = ControlPlaneClient(tenant.cp.url, run, tenant.run_token(run), log=lambda _: None)
    sink = EventSink(client)
    sink.start()
    line = "数据" * 30_000
    for i in range(300):
        sink.emit(EventType.LOG, step="s", level="INFO", message=f"{i} {line}")
    sink.emit(EventType.LOG, message="with a \x00 inside", data={"big": "x" * 400_000})
    assert sink.close(timeout=120), sink.error
    with tenant.user() as c:
        seqs: list[int] = []
        after = 0
        while True:
            page = c.get(
                f"{tenant.dep_path}/runs/{run}/events", params={"after": after, "limit": 50}
            )
            got = page.json()["events"]
            if not got:
                break
            seqs += [e["seq"] for e in got]
            last = got[-1]
            after = page.json()["last_seq"]
    assert seqs == list(range(1, 302))
    assert last["message"] == "with a \ufffd inside"
    assert last["data"]["original_bytes"] > 400_000  # cut to the limit, not refused
