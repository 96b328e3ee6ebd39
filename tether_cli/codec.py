"""``tether codec-server``: decode encrypted Temporal payloads for the Temporal UI and CLI."""

from pathlib import Path

import typer


def codec_server(
    host: str = typer.Option("127.0.0.1", "--host", envvar="TETHER_CODEC_SERVER_HOST"),
    port: int = typer.Option(8081, "--port", envvar="TETHER_CODEC_SERVER_PORT"),
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
    """Serve Temporal's codec protocol (POST /decode, /encode) with the agent's keys."""
    import logging

    from worker.codec import EncryptionCodec, KeySettingError, keys_from_environment
    from worker.codec_server import CodecServer

    try:
        found = keys_from_environment(keys or "", key_file)
    except KeySettingError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if not found:
        raise typer.BadParameter(
            "no key: set TETHER_TEMPORAL_ENCRYPTION_KEYS or TETHER_TEMPORAL_ENCRYPTION_KEY_FILE "
            "as for the agent"
        )
    # Refusals and payloads it cannot decrypt are logged, never the token or a payload.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    origins = [o.strip() for item in origin for o in item.split(",") if o.strip()]
    server = CodecServer((host, port), EncryptionCodec(found), token, origins)
    typer.echo(
        f"tether codec server on http://{host}:{server.server_address[1]} "
        f"(keys {', '.join(k.id for k in found)}; CORS for {', '.join(origins) or 'no origin'})"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
