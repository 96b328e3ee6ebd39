"""``tether codec-server``: decode encrypted Temporal payloads for the Temporal UI and CLI."""

import re
from pathlib import Path

import typer

# What a browser sends as Origin: scheme://host[:port], nothing after it. A path or a trailing
# slash would never match one, and CORS would fail with no hint why.
ORIGIN_RE = re.compile(r"^https?://[^/\s]+$")


def codec_server(
    host: str = typer.Option("127.0.0.1", "--host", envvar="TETHER_CODEC_SERVER_HOST"),
    port: int = typer.Option(
        8081, "--port", envvar="TETHER_CODEC_SERVER_PORT", min=0, max=65535, help="0: any free."
    ),
    origin: list[str] = typer.Option(
        [],
        "--origin",
        envvar="TETHER_CODEC_SERVER_ORIGINS",
        help="A Temporal UI origin allowed by CORS, e.g. http://127.0.0.1:8233 (repeatable).",
    ),
    token: str = typer.Option(
        ...,
        "--token",
        envvar="TETHER_CODEC_SERVER_TOKEN",
        help="The token every call must carry (Bearer, or the endpoint's first path segment).",
        show_default=False,
    ),
    keys: str | None = typer.Option(
        None, "--keys", envvar="TETHER_TEMPORAL_ENCRYPTION_KEYS", help="As the agent's."
    ),
    key_file: Path | None = typer.Option(
        None, "--key-file", envvar="TETHER_TEMPORAL_ENCRYPTION_KEY_FILE", help="As the agent's."
    ),
) -> None:
    """Serve Temporal's codec protocol (POST /decode, /encode) with the agent's keys until
    Ctrl-C or SIGTERM.

    Exit codes: 0 stopped by a signal; 1 could not start (e.g. the port is taken); 2 invalid
    configuration (no token, a missing or malformed key, an origin that is not
    scheme://host[:port])."""
    import logging

    from worker.codec import EncryptionCodec, KeySettingError, keys_from_environment
    from worker.codec_server import CodecServer

    if not token.strip():
        raise typer.BadParameter(
            "empty; set a random one, e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'",
            param_hint="'--token' / TETHER_CODEC_SERVER_TOKEN",
        )
    try:
        found = keys_from_environment(keys or "", key_file)
    except KeySettingError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if not found:
        raise typer.BadParameter(
            "no key: set TETHER_TEMPORAL_ENCRYPTION_KEYS or TETHER_TEMPORAL_ENCRYPTION_KEY_FILE "
            "as for the agent"
        )
    origins = [o.strip() for item in origin for o in item.split(",") if o.strip()]
    bad = [o for o in origins if not ORIGIN_RE.match(o)]
    if bad:
        raise typer.BadParameter(
            f"{bad[0]!r} is not an origin: give scheme://host[:port] as the browser sends it, "
            "e.g. http://127.0.0.1:8233, with no path or trailing slash",
            param_hint="'--origin' / TETHER_CODEC_SERVER_ORIGINS",
        )
    # Refusals and payloads it cannot decrypt are logged, never the token or a payload.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        server = CodecServer(EncryptionCodec(found), token, origins, host=host, port=port)
    except OSError as exc:
        typer.secho(
            f"error: cannot listen on {host}:{port}: {exc.strerror or exc}; choose another "
            "--port (TETHER_CODEC_SERVER_PORT) or --host",
            fg="red",
            err=True,
        )
        raise typer.Exit(1) from None
    typer.echo(
        f"tether codec server on {server.url} "
        f"(keys {', '.join(k.id for k in found)}; CORS for {', '.join(origins) or 'no origin'})"
    )
    server.serve()
    typer.echo("tether codec server stopped")
