"""Who a Nexus request is from (its link, as the Temporal server sets it) and whether the
agent's TETHER_NEXUS_CALLERS let it call: the narrow rules under the end-to-end refusal test
(tests/e2e/test_nexus.py)."""

import nexusrpc

from worker.nexus_service import caller_of
from worker.nexus_settings import NexusSettings

EVENT = "temporal.api.common.v1.Link.WorkflowEvent"


def link(url: str) -> nexusrpc.Link:
    return nexusrpc.Link(url=url, type=EVENT)


def test_the_caller_is_read_from_a_workflow_event_link() -> None:
    url = (
        "temporal:///namespaces/billing/workflows/close%2F2026-11/01a2-run/history"
        "?referenceType=EventReference&eventID=5&eventType=NexusOperationScheduled"
    )
    caller = caller_of([link("https://example.com/other"), link(url)], "tether-prod")
    assert caller is not None
    assert (caller.namespace, caller.workflow_id, caller.run_id) == (
        "billing",
        "close/2026-11",
        "01a2-run",
    )
    assert caller.service_endpoint == "tether-prod"


def test_no_link_means_no_caller() -> None:
    assert caller_of([], None) is None
    assert caller_of([link("temporal:///namespaces/x")], None) is None


def test_callers_default_to_the_agents_own_namespace() -> None:
    settings = NexusSettings()
    assert settings.allows("default", own_namespace="default")
    assert not settings.allows("billing", own_namespace="default")
    assert not settings.allows(None, own_namespace="default")
    assert settings.describe_callers("default") == "namespace default"


def test_named_namespaces_or_any() -> None:
    named = NexusSettings(callers=["billing", "ml"])
    assert named.allows("ml", "default") and not named.allows("default", "default")
    anyone = NexusSettings(callers=["*"])
    assert anyone.allows("whatever", "default") and anyone.allows(None, "default")
    assert anyone.describe_callers("default") == "any namespace"


def test_an_empty_token_is_no_token() -> None:
    assert NexusSettings.model_validate({"token": " "}).token is None
