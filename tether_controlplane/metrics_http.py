"""Request latency and requests in progress by route template, for /metrics.

Measured outermost, so a request refused before routing (a 401) counts too. The template
(``/api/v1/deployments/{dep}/runs/{run_id}``, never the raw path: a series per run would
never end) is found before the request is served, from a table of the app's templates built
at its first request: a dict lookup for a path without parameters, else the few templates
with as many segments, most literal first (``.../runs/validate`` before
``.../runs/{run_id}``). A path no route serves is ``(unmatched)``."""

import re
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from starlette.routing import BaseRoute, Mount

from tether_controlplane.metrics import HTTP_DURATION, HTTP_IN_PROGRESS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNMATCHED = "(unmatched)"
_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")


def route_templates(routes: list[BaseRoute]) -> Iterator[str]:
    """The full path template of every route: FastAPI (0.16x) keeps an included router's
    routes behind it, each with its effective (prefixed) template; older versions copy them
    into the app's routes with their full path."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):
            for context in contexts():
                template = getattr(context, "path_format", None)
                if template:
                    yield str(template)
        elif isinstance(route, Mount):
            yield route.path + "/{path:path}"
        else:
            template = getattr(route, "path_format", None)
            if template:
                yield str(template)


def _pattern(template: str) -> re.Pattern[str]:
    """``/a/{b}/c`` as a regular expression: its literal parts escaped, a segment per
    parameter."""
    parts, last = [], 0
    for param in _PARAM.finditer(template):
        parts += [re.escape(template[last : param.start()]), "[^/]+"]
        last = param.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts) + r"\Z")


class Templates:
    """Finds the template of a request path (see the module's doc)."""

    def __init__(self, templates: Iterator[str]) -> None:
        self.literal: dict[str, str] = {}
        self.by_segments: dict[int, list[tuple[re.Pattern[str], str]]] = {}
        self.prefixes: list[tuple[str, str]] = []  # mounts: "/static/{path:path}"
        ranked: list[tuple[int, str]] = []
        for template in dict.fromkeys(templates):
            params = _PARAM.findall(template)
            if not params:
                self.literal[template] = template
            elif any(convertor == "path" for _, convertor in params):
                self.prefixes.append((template.split("{", 1)[0], _PARAM.sub(r"{\1}", template)))
            else:
                ranked.append((len(params), template))
        for _, template in sorted(ranked):
            pattern = _pattern(template)
            self.by_segments.setdefault(template.count("/"), []).append((pattern, template))

    def find(self, path: str) -> str:
        found = self.literal.get(path)
        if found is not None:
            return found
        for pattern, template in self.by_segments.get(path.count("/"), ()):
            if pattern.match(path):
                return template
        for prefix, template in self.prefixes:
            if path.startswith(prefix):
                return template
        return UNMATCHED


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.templates: Templates | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.templates is None:  # every route exists by the first request
            self.templates = Templates(route_templates(scope["app"].router.routes))
        method = scope["method"]
        template = self.templates.find(scope["path"])
        status = 500  # what the server answers when the app raises before responding
        start = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        in_progress = HTTP_IN_PROGRESS.labels(method, template)
        in_progress.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            in_progress.dec()
            HTTP_DURATION.labels(method, template, f"{status // 100}xx").observe(
                time.perf_counter() - start
            )
