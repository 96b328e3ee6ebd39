"""What a restart of ``tether dev`` keeps, and what keeps two from sharing a home.

``$TETHER_HOME/dev.json`` (a ``DevFile``) holds the connection and the tokens: the user
commands read it, and the next start reuses the tokens while they still work.
``$TETHER_HOME/dev.lock`` is held while a ``tether dev`` runs there.
"""

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rich.markup import escape

from tether_cli.context import DevFile, parse_dev_file
from tether_cli.dev.options import DevError, Options
from tether_cli.dev.printout import say
from tether_cli.files import write_private

# The run concurrency limit of the deployment the bootstrap creates.
CONCURRENCY = 10


@dataclass
class Tokens:
    """The user and agent token of this start; ``reused`` when kept from the last one."""

    user: str
    agent: str
    reused: bool
    # The agent's Nexus token: it hosts the service tether.v1.Runs with it.
    nexus: str | None = None


def load_dev_file(path: Path) -> DevFile:
    """The last start's dev.json; empty when there is none, or (with a warning) when it
    cannot be read: new tokens are minted then."""
    try:
        return parse_dev_file(path)
    except (OSError, ValueError) as exc:
        say(
            f"ignoring unreadable {escape(str(path))} ({escape(str(exc))}); minting new tokens",
            style="yellow",
        )
        return DevFile()


def save_dev_file(path: Path, dev_file: DevFile) -> None:
    """Written atomically, readable by the owner only: it holds tokens."""
    write_private(path, json.dumps(dev_file.model_dump(mode="json"), indent=2) + "\n")


def dev_file_for(o: Options, tokens: Tokens) -> DevFile:
    """What this start saves: every field, a missing Temporal UI as null."""
    return DevFile(
        url=o.url,
        organization=o.org,
        deployment=o.deployment,
        user_token=tokens.user,
        agent_token=tokens.agent,
        nexus_token=tokens.nexus,
        temporal_address=o.temporal,
        temporal_ui=o.temporal_ui,
    )


def choose_tokens(o: Options, saved: DevFile) -> Tokens:
    """The saved tokens when they still work for this organization and deployment (a
    restart keeps them); otherwise new ones. The bootstrap checks them against the database,
    and creates the organization and deployment if missing."""
    same_tenant = saved.organization == o.org and saved.deployment == o.deployment
    # In-process, against the database the control plane serves: it is already at the
    # latest revision, so the bootstrap's migration step does nothing.
    from tether_controlplane.bootstrap import bootstrap

    result = bootstrap(
        o.database_url,
        o.org,
        o.deployment,
        CONCURRENCY,
        keep_user_token=saved.user_token if same_tenant else None,
        keep_agent_token=saved.agent_token if same_tenant else None,
        nexus=True,
        keep_nexus_token=saved.nexus_token if same_tenant else None,
    )
    reused = result.user_token_reused and result.agent_token_reused
    if same_tenant and saved.user_token and not reused:
        say("the saved tokens no longer work; minted new ones", style="yellow")
    return Tokens(
        user=result.user_token, agent=result.agent_token, reused=reused, nexus=result.nexus_token
    )


def lock_home(home: Path) -> IO[str]:
    """One ``tether dev`` per home: two would share the SQLite file and the agent's state
    directory, and each would stop the other's code servers. The lock goes with the
    process, however it ends."""
    lock = open(home / "dev.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        lock.close()
        raise DevError(
            f"another `tether dev` (pid {holder}) is running with --home {home}; stop it "
            "first, or pass another --home"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock
