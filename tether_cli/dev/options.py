"""What one ``tether dev`` is asked to run, and what follows from it: the addresses it
serves on, the paths under its home, and the check that its ports are free."""

import socket
from dataclasses import dataclass
from pathlib import Path

from tether_cli.context import DEV_FILE_NAME
from tether_cli.render import CliError

HOST = "127.0.0.1"
# The bundled example: deployed at startup (``locations``), named in the ready panel.
EXAMPLE_LOCATION = "quickstart"
EXAMPLE_MODULE = "tether_sdk.examples.quickstart"
EXAMPLE_CONFIG = '{"source": "s3://bucket/orders.csv"}'

# A port to check before starting: (port, what listens there, the flag that changes it).
PortUse = tuple[int, str, str]


class DevError(CliError):
    """Ends ``tether dev`` with ``error: <message>``, after stopping what it started."""


@dataclass
class Options:
    """The command line of ``tether dev``, resolved."""

    home: Path
    port: int
    temporal_port: int
    temporal_ui_port: int
    temporal_metrics_port: int | None
    temporal_http_port: int | None
    temporal_address: str | None
    org: str
    deployment: str
    example: bool
    headless: bool
    watch: bool = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def agent_state(self) -> Path:
        return self.home / "agent"

    @property
    def dev_file(self) -> Path:
        return self.home / DEV_FILE_NAME

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.home / 'tether.db'}"

    @property
    def own_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def temporal(self) -> str:
        return self.temporal_address or f"{HOST}:{self.temporal_port}"

    @property
    def temporal_ui(self) -> str | None:
        if not self.own_temporal or self.headless:
            return None
        return f"http://{HOST}:{self.temporal_ui_port}"

    def ports(self) -> list[PortUse]:
        ports = [(self.port, "control plane", "--port")]
        if self.own_temporal:
            ports.append((self.temporal_port, "Temporal", "--temporal-port"))
            if not self.headless:
                ports.append(
                    (self.temporal_ui_port, "Temporal UI", "--temporal-ui-port (or --headless)")
                )
            if self.temporal_metrics_port is not None:
                ports.append(
                    (self.temporal_metrics_port, "Temporal metrics", "--temporal-metrics-port")
                )
            if self.temporal_http_port is not None:
                ports.append((self.temporal_http_port, "Temporal HTTP", "--temporal-http-port"))
        return ports


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the servers do: a port in TIME_WAIT is free to them, a listening one is not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def check_ports(ports: list[PortUse]) -> None:
    """Raises naming the first problem: a port given twice, out of range, or in use."""
    seen: dict[int, str] = {}
    for port, what, flag in ports:
        if port in seen:
            raise DevError(f"{seen[port]} and {flag} are both {port}: give them different ports")
        seen[port] = flag
        if not 0 < port < 65536:
            raise DevError(f"{flag} {port} is not a TCP port (1-65535)")
        if port_in_use(port):
            raise DevError(
                f"port {port} on {HOST} ({what}) is already in use: pass {flag} to use "
                "another, or stop what is listening there"
            )
