"""The markers of pyproject.toml (``e2e``, ``docker``, ``postgres``) are on every test of their
kind (tests/conftest.py applies them), so that ``pytest -m KIND`` runs one kind and
``-m "not e2e and not docker and not postgres"`` everything else: the collections that these
commands make, compared with the whole suite's."""

import json
import os
import re
import subprocess
import sys

from tests.support import REPO

# A test run on the PostgreSQL backend: a parameter id ``postgres`` among its ids.
ON_POSTGRES = re.compile(r"\[(?:.*-)?postgres(?:-.*)?\]$")
KINDS = ("e2e", "docker", "postgres")
REST = "not e2e and not docker and not postgres"

# `pytest [-m EXPRESSION] --collect-only -q` for each expression, one after another in one
# process (the suite's modules are imported once: each whole collection costs seconds),
# keeping the node IDs each collection selected.
COLLECT = """
import json, sys
import pytest

class Selected:
    def pytest_collection_finish(self, session):
        self.ids = [item.nodeid for item in session.items]

found = []
for expression in json.loads(sys.argv[1]):
    selected = Selected()
    args = ["--collect-only", "-q", "-p", "no:cacheprovider"]
    args += ["-m", expression] if expression is not None else []
    code = pytest.main(args, plugins=[selected])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        sys.exit(f"pytest {' '.join(args)} exited with {code}")
    found.append(selected.ids)
print("SELECTED " + json.dumps(found))
"""


def collections(expressions: list[str | None]) -> list[set[str]]:
    """The node IDs ``pytest [-m EXPRESSION] --collect-only -q`` selects, from the repository
    root as a developer types it, for each expression."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTEST_ADDOPTS" and not k.startswith("PYTEST_XDIST")
    }
    result = subprocess.run(
        [sys.executable, "-c", COLLECT, json.dumps(expressions)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("SELECTED ")]
    return [set(ids) for ids in json.loads(line.removeprefix("SELECTED "))]


def test_each_marker_selects_exactly_its_kind_and_the_rest_none_of_them() -> None:
    everything, e2e, docker, postgres, rest = collections([None, *KINDS, REST])

    assert everything
    expected = {
        "e2e": {n for n in everything if n.startswith("tests/e2e/")},
        "docker": {n for n in everything if n.startswith("tests/docker/")},
        "postgres": {n for n in everything if ON_POSTGRES.search(n.split("::", 1)[1])},
    }
    for kind, found in zip(KINDS, (e2e, docker, postgres), strict=True):
        assert expected[kind], f"no {kind} test collected at all"
        assert found == expected[kind], (
            kind,
            sorted(found - expected[kind])[:10],
            sorted(expected[kind] - found)[:10],
        )
    # The rest: none of those, and everything else.
    assert not rest & (e2e | docker | postgres)
    assert rest == everything - e2e - docker - postgres
