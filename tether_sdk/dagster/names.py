"""How Dagster's job names become Tether's, and back (the run tags that carry a partition
and an asset selection are ``tether_api.runtags``).

Tether's job names follow ``tether_api.names.NAME_PATTERN`` (they end up in URLs and
workflow IDs). Dagster's mostly fit; its implicit asset job ``__ASSET_JOB`` does not (a
leading ``_``), so it is shown as ``assets`` (``assets-2``... when a job of the project has
that name); Dagster's other ``__`` jobs (an asset-targeting schedule's or sensor's
``__anonymous_asset_job_<name>``) without the leading underscores. The mapping is a
function of the definitions alone, so the code server and every run worker of a location
compute the same one. This module does not import dagster."""

from collections.abc import Iterable

from tether_api.names import NAME_RE

IMPLICIT_ASSET_JOB = "__ASSET_JOB"
ASSET_JOB_NAME = "assets"


class DagsterNameError(ValueError):
    """A Dagster name that Tether cannot show: its message says which and the rule."""


class JobNames:
    """Dagster job name <-> Tether job name, for one repository's jobs."""

    def __init__(self, dagster_names: Iterable[str]) -> None:
        names = sorted(dagster_names)
        self._to_tether: dict[str, str] = {}
        taken = {n for n in names if n != IMPLICIT_ASSET_JOB}
        for name in names:
            if name == IMPLICIT_ASSET_JOB or name.startswith("__"):
                # Dagster's own jobs (the implicit asset job; `__anonymous_asset_job_<x>` of
                # a schedule or sensor that targets assets): their name without the dunder.
                base = ASSET_JOB_NAME if name == IMPLICIT_ASSET_JOB else name.lstrip("_")
                shown, n = base, 1
                while shown in taken or not NAME_RE.match(shown):
                    n += 1
                    shown = f"{base[:58]}-{n}"
                    if n > 99:
                        raise DagsterNameError(f"no Tether name found for Dagster job {name!r}")
                taken.add(shown)
                self._to_tether[name] = shown
            elif NAME_RE.match(name):
                self._to_tether[name] = name
            else:
                raise DagsterNameError(
                    f"Dagster job {name!r} has a name Tether cannot use: job names are 1-63 "
                    "letters, digits, '_', '.' or '-', starting with a letter or digit; rename "
                    "the job"
                )
        self._to_dagster = {t: d for d, t in self._to_tether.items()}

    def tether(self, dagster_name: str) -> str:
        return self._to_tether[dagster_name]

    def dagster(self, tether_name: str) -> str | None:
        """The Dagster job a Tether job name stands for; None when there is none."""
        return self._to_dagster.get(tether_name)

    def shown(self) -> list[str]:
        return sorted(self._to_dagster)
