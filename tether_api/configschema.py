"""The fields of a job's run config, read from its JSON schema, for people to look at: the
launchpad's field list, the location page's and ``tether locations show``'s tables."""

from typing import Any

from pydantic import BaseModel


class ConfigField(BaseModel):
    path: str  # dotted, e.g. "source" or "target.table"
    type: str
    required: bool
    default: Any = None
    has_default: bool = False
    description: str | None = None


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        found = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"))
        if isinstance(found, dict):
            return {**found, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def type_text(schema: dict[str, Any], root: dict[str, Any]) -> str:
    schema = _resolve(schema, root)
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return " | ".join(type_text(s, root) for s in schema[union])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        return f"list[{type_text(items, root)}]" if isinstance(items, dict) else "list"
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    return str(kind or schema.get("title") or "any")


def fields(schema: dict[str, Any] | None, depth: int = 2) -> list[ConfigField]:
    """Each property (nested objects' properties too, ``depth`` levels down), in order."""
    if not schema:
        return []
    found: list[ConfigField] = []

    def walk(node: dict[str, Any], prefix: str, level: int) -> None:
        node = _resolve(node, schema)
        required = set(node.get("required", []))
        for name, prop in (node.get("properties") or {}).items():
            prop = _resolve(prop, schema)
            path = f"{prefix}{name}"
            found.append(
                ConfigField(
                    path=path,
                    type=type_text(prop, schema),
                    required=name in required,
                    default=prop.get("default"),
                    has_default="default" in prop,
                    description=prop.get("description"),
                )
            )
            if prop.get("properties") and level < depth:
                walk(prop, f"{path}.", level + 1)

    walk(schema, "", 1)
    return found
