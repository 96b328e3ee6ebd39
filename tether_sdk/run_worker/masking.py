"""Masking the values of secrets (a location's passthrough_env) in log text before it
leaves the user's environment: the run worker masks its events, the agent masks the log
tails and the log text it sends to the control plane."""

import os
from collections.abc import Mapping
from typing import Any

from tether_api.logs import ENV_MASK_NAMES

# Shorter values are not masked: replacing every "1" or "yes" in a log would destroy the
# text without protecting anything that deserves the name of a secret.
MIN_MASKED_CHARS = 4


def mask_names(env: Mapping[str, str]) -> list[str]:
    """The names listed in TETHER_MASK_ENV."""
    return [n.strip() for n in env.get(ENV_MASK_NAMES, "").split(",") if n.strip()]


class Masker:
    """Replaces each secret's value with ``<masked:NAME>``."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        # Longest first: a secret that contains another is masked whole.
        self._pairs = sorted(
            (
                (value, f"<masked:{name}>")
                for name, value in secrets.items()
                if len(value) >= MIN_MASKED_CHARS
            ),
            key=lambda pair: -len(pair[0]),
        )

    @classmethod
    def from_names(cls, names: list[str], env: Mapping[str, str] | None = None) -> "Masker":
        """The values of ``names`` in ``env`` (default: this process's environment)."""
        source = os.environ if env is None else env
        return cls({name: source[name] for name in names if source.get(name)})

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def text(self, text: str) -> str:
        for value, replacement in self._pairs:
            if value in text:
                text = text.replace(value, replacement)
        return text

    def value(self, value: Any) -> Any:
        """``value`` with every string in it masked (dicts and lists walked)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
