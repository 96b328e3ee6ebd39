"""``tether controlplane bootstrap --token-dir``: the tokens land in files, and a second run
(a restarted container) keeps the ones that still work instead of minting new ones."""

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, update
from typer.testing import CliRunner

from tether_cli.controlplane import app
from tether_controlplane.db import Database
from tether_controlplane.services import tenancy
from tether_controlplane.tables import AuditRow, TokenRow
from tether_controlplane.token_secrets import TokenKind, hash_token


def _bootstrap(db_url: str, token_dir: Path, *extra: str, deployment: str = "prod") -> dict:
    result = CliRunner().invoke(
        app,
        ["bootstrap", "--db", db_url, "--org", "acme", "--deployment", deployment,
         "--token-dir", str(token_dir), "--json", *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out: dict = json.loads(result.stdout)
    return out


def _tokens(token_dir: Path) -> tuple[str, str]:
    return (
        (token_dir / "user.token").read_text().strip(),
        (token_dir / "agent.token").read_text().strip(),
    )


def _token_count(db_url: str) -> int:
    db = Database(db_url)
    try:
        with db.read() as s:
            return s.scalar(select(func.count()).select_from(TokenRow)) or 0
    finally:
        db.dispose()


def _audited(db_url: str) -> list[tuple[str, str, str, int | None, str | None, str]]:
    """The audit log, oldest first: action, actor name, kind and token id, deployment, target."""
    db = Database(db_url)
    try:
        with db.read() as s:
            return [
                (e.action, e.actor_name, e.actor_kind, e.actor_token_id, e.deployment, e.target)
                for e in s.scalars(select(AuditRow).order_by(AuditRow.id))
            ]
    finally:
        db.dispose()


def _token_id(db_url: str, secret: str) -> int:
    db = Database(db_url)
    try:
        with db.read() as s:
            token_id = s.scalar(
                select(TokenRow.id).where(TokenRow.token_hash == hash_token(secret))
            )
            assert token_id is not None
            return token_id
    finally:
        db.dispose()


def test_token_dir_is_written_then_reused(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'tether.db'}"
    token_dir = tmp_path / "state" / "tokens"  # created, parents too

    first = _bootstrap(db_url, token_dir)
    user, agent = _tokens(token_dir)
    assert (user, agent) == (first["user_token"], first["agent_token"])
    assert user.startswith("tether_user_") and agent.startswith("tether_agent_")
    assert not first["user_token_reused"] and not first["agent_token_reused"]
    for name in ("user.token", "agent.token"):
        assert stat.S_IMODE((token_dir / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in token_dir.iterdir()) == ["agent.token", "user.token"]
    db = Database(db_url)
    try:
        with db.read() as s:
            u, a = tenancy.authenticate(s, user), tenancy.authenticate(s, agent)
            assert u is not None and u.kind is TokenKind.USER and u.deployment_id is None
            assert a is not None and a.kind is TokenKind.AGENT and a.deployment_id is not None
    finally:
        db.dispose()
    minted = _token_count(db_url)
    # Each token it minted is audited, by the system: no token acted.
    user_id, agent_id = _token_id(db_url, user), _token_id(db_url, agent)
    assert _audited(db_url) == [
        (
            "token.create",
            "bootstrap",
            "system",
            None,
            None,
            f"user token 'bootstrap' (id {user_id})",
        ),
        (
            "token.create",
            "bootstrap",
            "system",
            None,
            "prod",
            f"agent token 'bootstrap' (id {agent_id})",
        ),
    ]

    # A restart: both still work, so nothing is minted and the files stay as they are.
    again = _bootstrap(db_url, token_dir)
    assert again["user_token_reused"] and again["agent_token_reused"]
    assert _tokens(token_dir) == (user, agent)
    assert _token_count(db_url) == minted
    assert len(_audited(db_url)) == 2  # kept tokens are not minted, nor audited again

    # A revoked agent token is replaced; the user token, still valid, is kept.
    db = Database(db_url)
    try:
        with db.write() as s:
            s.execute(
                update(TokenRow)
                .where(TokenRow.token_hash == hash_token(agent))
                .values(revoked_at=datetime.now(UTC))
            )
    finally:
        db.dispose()
    replaced = _bootstrap(db_url, token_dir)
    assert replaced["user_token_reused"] and not replaced["agent_token_reused"]
    new_user, new_agent = _tokens(token_dir)
    assert new_user == user and new_agent != agent
    assert stat.S_IMODE((token_dir / "agent.token").stat().st_mode) == 0o600
    assert _token_count(db_url) == minted + 1
    new_agent_id = _token_id(db_url, new_agent)
    assert _audited(db_url)[2:] == [
        (
            "token.create",
            "bootstrap",
            "system",
            None,
            "prod",
            f"agent token 'bootstrap' (id {new_agent_id})",
        )
    ]

    # Another deployment: the user token reaches the whole organization and is kept; the agent
    # token belongs to one deployment, so staging gets its own.
    staging = _bootstrap(db_url, token_dir, deployment="staging")
    assert staging["user_token_reused"] and not staging["agent_token_reused"]
    assert _tokens(token_dir)[1] not in (agent, new_agent)


def test_unusable_saved_tokens_are_replaced(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'tether.db'}"
    token_dir = tmp_path / "tokens"
    token_dir.mkdir()
    # Garbage, and a token of the wrong kind (the user token in the agent's file).
    (token_dir / "user.token").write_text("not-a-token\n")
    other = _bootstrap(db_url, tmp_path / "other")
    (token_dir / "agent.token").write_text(other["user_token"])

    result = _bootstrap(db_url, token_dir)
    assert not result["user_token_reused"] and not result["agent_token_reused"]
    user, agent = _tokens(token_dir)
    assert user.startswith("tether_user_") and agent.startswith("tether_agent_")
    assert user != other["user_token"]


def test_token_dir_human_output_names_the_files_not_the_tokens(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'tether.db'}"
    token_dir = tmp_path / "tokens"
    args = ["bootstrap", "--db", db_url, "--org", "acme", "--deployment", "prod",
            "--token-dir", str(token_dir)]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    user, agent = _tokens(token_dir)
    assert user not in first.output and agent not in first.output
    assert str(token_dir / "user.token") in first.stdout and "(new)" in first.stdout
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert second.stdout.count("(kept, still valid)") == 2
