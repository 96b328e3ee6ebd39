"""``tether dev``: the whole stack on one machine, in one command.

It starts, as child processes it owns, the Temporal dev server (unless one is given), the
control plane (SQLite under ``$TETHER_HOME``) and an agent with the process launcher; writes
the tokens to ``$TETHER_HOME/dev.json`` for the user commands; deploys the bundled example;
and stops everything again on Ctrl-C.

Every child runs in its own session and process group: Ctrl-C at the terminal reaches only
this process, which then stops the children in order (agent first, so it never sees its
control plane or Temporal vanish under it), each by its PID.

One module per role; each imports only those listed before it:

- ``options``: what was asked for, the addresses and paths that follow, the port check.
- ``printout``: what it prints: progress and problems on stderr, the ready panel on stdout.
- ``processes``: one child process (own session, log file, stopping it); the signal flags.
- ``stack``: the children started so far: waiting on them, stopping them in order.
- ``temporal``: the Temporal dev server, and finding its binary.
- ``controlplane``: the control plane process, and a client of its API.
- ``state``: ``dev.json`` (the tokens a restart keeps) and the lock of one run per home.
- ``agent``: the agent process, and at the end what it launched.
- ``locations``: the bundled example and the other code locations, at startup.
- ``command``: the Typer command, which wires them together.
"""

from tether_cli.dev.command import dev

__all__ = ["dev"]
