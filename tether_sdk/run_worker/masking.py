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
# Where text was cut (a tail read from an offset, a message cut to its limit), this much of a
# secret's start or end at the cut is masked too.
MIN_EDGE_CHARS = 6


def mask_names(env: Mapping[str, str]) -> list[str]:
    """The names listed in TETHER_MASK_ENV."""
    return [n.strip() for n in env.get(ENV_MASK_NAMES, "").split(",") if n.strip()]


def _pieces(value: str) -> list[str]:
    """What to look for of one secret: its value, and each line of a value of several lines
    (a PEM key, a JSON credential), since output is sent and masked line by line."""
    found = [value]
    if "\n" in value or "\r" in value:
        found += [line.strip() for line in value.splitlines()]
    return [piece for piece in found if len(piece) >= MIN_MASKED_CHARS]


class Masker:
    """Replaces each secret's value (and each line of a multi-line one) with
    ``<masked:NAME>``."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        pairs = {
            piece: f"<masked:{name}>" for name, value in secrets.items() for piece in _pieces(value)
        }
        # Longest first: a secret that contains another is masked whole.
        self._pairs = sorted(pairs.items(), key=lambda pair: -len(pair[0]))

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

    def cut(self, text: str) -> str:
        """``text`` masked, where it may begin or end inside a secret (it was cut there): a
        secret's first characters at its end, or its last ones at its start, are masked."""
        text = self.text(text)
        for secret, replacement in self._pairs:
            longest = min(len(secret) - 1, len(text))
            for k in range(longest, MIN_EDGE_CHARS - 1, -1):
                if text.endswith(secret[:k]):
                    text = text[:-k] + replacement
                    break
            longest = min(len(secret) - 1, len(text))
            for k in range(longest, MIN_EDGE_CHARS - 1, -1):
                if text.startswith(secret[-k:]):
                    text = replacement + text[k:]
                    break
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
