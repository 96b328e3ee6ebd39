"""A code location that cannot be imported: for tests of load-error reporting."""

from tether_sdk import Definitions


def _connect_to_warehouse() -> None:
    raise RuntimeError("the warehouse is unreachable (this module fails on purpose)")


_connect_to_warehouse()

defs = Definitions()
