"""The ``gamewallet`` command: serve, migrate, manage clients and players, audit, demo.

Every command reads the database URL from ``GAMEWALLET_DATABASE_URL`` (default: the embedded
SQLite file ``./gamewallet.db``), prints human-readable text, or one JSON document with
``--json``, and exits non-zero on failure. Secrets given on the command line are stored
hashed (client secrets) or kept for use and only ever printed masked (JDB AES keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from gamewallet.admin.command import admin as admin_command
from gamewallet.clients.command import simulate as simulate_command
from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.money import AmountError, format_minor, parse_amount
from gamewallet.observability import uvicorn_log_config
from gamewallet.service import admin, jdb
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store
from gamewallet.store.records import ClientRecord, PlayerRecord
from gamewallet.worker.command import worker as worker_command

T = TypeVar("T")
CURRENCY = re.compile(r"[A-Z]{3}")
#: Longest a single database statement of a CLI command may run.
CLI_TIMEOUT_S = 3600.0


def _mask(secret: str) -> str:
    """Show a key's first and last two characters only (short keys not at all)."""
    return (
        "*" * len(secret) if len(secret) < 8 else secret[:2] + "*" * (len(secret) - 4) + secret[-2:]
    )


def _emit(ctx: click.Context, data: dict[str, Any], text: str) -> None:
    if ctx.obj["json"]:
        click.echo(json.dumps(data, ensure_ascii=False, sort_keys=True))
    else:
        click.echo(text)


def _run(ctx: click.Context, body: Callable[[Services], Awaitable[T]]) -> T:
    """Open the store (migrating the embedded default), run ``body``, close."""
    settings: Settings = ctx.obj["settings"]

    async def main() -> T:
        # Operator commands may scan the whole ledger (the audit): no 10 s statement limit.
        store = open_store(
            settings.database_url,
            pool_size=1,
            command_timeout_s=CLI_TIMEOUT_S,
            sqlite_synchronous=settings.sqlite_synchronous,
        )
        services = Services(settings, store)
        await services.start()
        try:
            return await body(services)
        finally:
            await services.close()

    try:
        return asyncio.run(main())
    except WalletError as exc:
        _fail(ctx, exc.detail)


def _fail(ctx: click.Context, message: str, code: int = 1) -> NoReturn:
    if ctx.obj.get("json"):
        click.echo(json.dumps({"error": message}))
    else:
        click.echo(f"error: {message}", err=True)
    ctx.exit(code)
    raise AssertionError("unreachable")  # ctx.exit raises


def _amount(ctx: click.Context, text: str | None, *, zero: bool = True) -> int | None:
    if text is None:
        return None
    try:
        return parse_amount(text, allow_zero=zero)
    except AmountError as exc:
        _fail(ctx, f"bad amount {text!r}: {exc.reason}")


def _currency(ctx: click.Context, text: str) -> str:
    if not CURRENCY.fullmatch(text):
        _fail(ctx, f"currency must be 3 capital letters, not {text!r}")
    return text


def _cidrs(ctx: click.Context, values: Sequence[str]) -> list[str]:
    try:
        return [str(ipaddress.ip_network(v, strict=False)) for v in values]
    except ValueError as exc:
        _fail(ctx, f"bad --allow-ip: {exc}")


def _player_json(player: PlayerRecord) -> dict[str, Any]:
    return {
        "playerId": player.external_id,
        "currency": player.currency,
        "nickname": player.nickname,
        "balance": format_minor(player.cash.balance.available_minor),
        "posted": format_minor(player.cash.balance.posted_minor),
        "held": format_minor(player.cash.balance.held_minor),
        "pendingCredit": format_minor(player.cash.balance.pending_credit_minor),
        "freeCredit": format_minor(player.free.balance.posted_minor),
        "blocked": player.blocked,
        "inGame": player.game_type,
    }


def _client_json(client: ClientRecord) -> dict[str, Any]:
    config = dict(client.config)
    if "aes_key" in config:
        config["aes_key"] = _mask(str(config["aes_key"]))
    if "aes_iv" in config:
        config["aes_iv"] = _mask(str(config["aes_iv"]))
    if "payment_secret" in config:
        config["payment_secret"] = _mask(str(config["payment_secret"]))
    if "integration_password" in config:
        config["integration_password"] = _mask(str(config["integration_password"]))
    return {
        "id": client.id,
        "protocol": client.protocol,
        "name": client.name,
        "username": client.username,
        "currency": client.currency,
        "creditLimit": None
        if client.credit_limit_minor is None
        else format_minor(client.credit_limit_minor),
        "config": config,
    }


@click.group()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def main(ctx: click.Context, as_json: bool) -> None:
    """gamewallet: a double-entry wallet server for online-game integrations."""
    ctx.ensure_object(dict)
    ctx.obj["json"] = as_json
    ctx.obj["settings"] = Settings.from_env()


# --- serve and db ------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Run the HTTP server (database from GAMEWALLET_DATABASE_URL)."""
    import uvicorn

    if sys.flags.optimize:
        _fail(ctx, "refusing to run with python -O: ledger invariants are assertions")
    settings: Settings = ctx.obj["settings"]
    if settings.database_url.startswith("sqlite:///"):
        migrate.upgrade(settings.database_url)
    with _shared_rate_limits(workers, settings):
        _run_uvicorn(uvicorn, settings, host, port, workers)


@contextlib.contextmanager
def _shared_rate_limits(workers: int, settings: Settings) -> Iterator[None]:
    """With several workers and no GAMEWALLET_RATE_LIMIT_FILE, a file of their own for the
    duration of the server, so that a client's rate counts across all of them (the workers
    read the variable from the environment they inherit)."""
    if workers == 1 or settings.rate_limit_file:
        yield
        return
    # mkstemp creates the file with O_EXCL and mode 0600: no other user can take its place.
    shm = Path("/dev/shm")  # noqa: S108 - memory-backed, nothing of it needs to be on disk
    where = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    fd, path = tempfile.mkstemp(prefix="gamewallet-rate-", dir=where)
    os.close(fd)
    os.environ["GAMEWALLET_RATE_LIMIT_FILE"] = path
    try:
        yield
    finally:
        os.environ.pop("GAMEWALLET_RATE_LIMIT_FILE", None)
        Path(path).unlink(missing_ok=True)


def _run_uvicorn(uvicorn: Any, settings: Settings, host: str, port: int, workers: int) -> None:
    uvicorn.run(
        "gamewallet.app:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        server_header=False,
        limit_max_requests=None,
        # httptools with a bound on request heads (it has none of its own).
        http="gamewallet.httpserver:BoundedHttpToolsProtocol",
        # uvicorn's own lines (its supervisor's too) as JSON, like the app's.
        log_config=uvicorn_log_config(settings.log_level, settings.log_format),
    )


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply every pending migration."""
    settings: Settings = ctx.obj["settings"]
    migrate.upgrade(settings.database_url)
    _emit(
        ctx, {"revision": migrate.current_head()}, f"database at revision {migrate.current_head()}"
    )


# --- clients -----------------------------------------------------------------------------


@main.group()
def client() -> None:
    """Add and list calling clients (seamless games, HRG agents, JDB domains)."""


def _add_client(ctx: click.Context, new: admin.NewClient) -> None:
    async def body(s: Services) -> ClientRecord:
        return await s.store.run(admin.create_client(new, s.clock.now_ms(), s.key))

    record = _run(ctx, body)
    _emit(ctx, _client_json(record), f"added {record.protocol} client {record.name}")


@client.command("list")
@click.pass_context
def client_list(ctx: click.Context) -> None:
    """List every client (secrets never shown)."""
    from gamewallet.store import ops
    from gamewallet.store.port import do

    async def body(s: Services) -> list[ClientRecord]:
        return await s.store.run(do(ops.ListClients()))

    clients = _run(ctx, body)
    rows = [_client_json(c) for c in clients]
    _emit(ctx, {"clients": rows}, "\n".join(f"{c['protocol']:9} {c['name']}" for c in rows))


@client.group("add")
def client_add() -> None:
    """Add a client of one protocol."""


@client_add.command("seamless")
@click.argument("name")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--allow-ip", multiple=True, help="CIDR allowed to call (repeatable).")
@click.option("--integration-url", help="Base URL of the game's Integration API.")
@click.option("--integration-username", help="Our Basic user name at the game's Integration API.")
@click.option("--integration-password", help="Our Basic password at the game's Integration API.")
@click.option("--game-url", help="Launch URL template with {token}.")
@click.option("--payment-callback-url", help="Where payment callbacks are POSTed.")
@click.option("--payment-secret", help="Key of the payment callback signature.")
@click.option("--credit-limit", help="How far below zero the client's account may go.")
@click.pass_context
def add_seamless(
    ctx: click.Context,
    name: str,
    username: str,
    password: str,
    allow_ip: tuple[str, ...],
    integration_url: str | None,
    integration_username: str | None,
    integration_password: str | None,
    game_url: str | None,
    payment_callback_url: str | None,
    payment_secret: str | None,
    credit_limit: str | None,
) -> None:
    """Add a seamless-wallet client (a game backend calling us)."""
    config: dict[str, Any] = {"allow_ips": _cidrs(ctx, allow_ip)}
    optional = {
        "integration_url": integration_url,
        "integration_username": integration_username,
        "integration_password": integration_password,
        "game_url": game_url,
        "payment_callback_url": payment_callback_url,
        "payment_secret": payment_secret,
    }
    config.update({key: value for key, value in optional.items() if value})
    _add_client(
        ctx,
        admin.NewClient(
            "seamless", name, username, password, None, _amount(ctx, credit_limit), config
        ),
    )


@client_add.command("hrg")
@click.argument("agent_id")
@click.option("--client-id", required=True)
@click.option("--client-secret", required=True)
@click.option("--currency", required=True)
@click.option("--game-url", help="Launch URL template with {token}.")
@click.option("--allow-ip", multiple=True, help="CIDR allowed to call (repeatable).")
@click.option("--credit-limit")
@click.pass_context
def add_hrg(
    ctx: click.Context,
    agent_id: str,
    client_id: str,
    client_secret: str,
    currency: str,
    game_url: str | None,
    allow_ip: tuple[str, ...],
    credit_limit: str | None,
) -> None:
    """Add an HRG agent (an operator moving money in and out)."""
    config: dict[str, Any] = {"allow_ips": _cidrs(ctx, allow_ip)}
    if game_url:
        config["game_url"] = game_url
    _add_client(
        ctx,
        admin.NewClient(
            "hrg",
            agent_id,
            client_id,
            client_secret,
            _currency(ctx, currency),
            _amount(ctx, credit_limit),
            config,
        ),
    )


@client_add.command("jdb")
@click.argument("dc")
@click.option("--parent", required=True, help="The agent id (parent) of this domain.")
@click.option("--key", "aes_key", required=True, help="16-character AES key.")
@click.option("--iv", "aes_iv", required=True, help="16-character AES IV.")
@click.option("--currency", required=True)
@click.option("--game-url", help="Launch URL template with {token}.")
@click.option("--allow-ip", multiple=True, help="CIDR allowed to call (repeatable).")
@click.option("--credit-limit")
@click.pass_context
def add_jdb(
    ctx: click.Context,
    dc: str,
    parent: str,
    aes_key: str,
    aes_iv: str,
    currency: str,
    game_url: str | None,
    allow_ip: tuple[str, ...],
    credit_limit: str | None,
) -> None:
    """Add a JDB domain (operator calling apiRequest.do with AES payloads)."""
    if len(aes_key.encode()) != 16 or len(aes_iv.encode()) != 16:
        _fail(ctx, "--key and --iv must be 16 characters each")
    config: dict[str, Any] = {
        "parent": parent,
        "aes_key": aes_key,
        "aes_iv": aes_iv,
        "allow_ips": _cidrs(ctx, allow_ip),
    }
    if game_url:
        config["game_url"] = game_url
    _add_client(
        ctx,
        admin.NewClient(
            "jdb", dc, None, None, _currency(ctx, currency), _amount(ctx, credit_limit), config
        ),
    )


# --- players -----------------------------------------------------------------------------


def _find_client(s: Services, name: str) -> Awaitable[ClientRecord]:
    """A client by name, whatever its protocol (names are unique in practice)."""
    from gamewallet.store import ops
    from gamewallet.store.port import do

    async def find() -> ClientRecord:
        clients = await s.store.run(do(ops.ListClients()))
        matches = [c for c in clients if c.name == name]
        if len(matches) != 1:
            raise WalletError(
                ErrorCode.CLIENT_NOT_FOUND,
                f"no client named {name}" if not matches else f"client name {name} is ambiguous",
            )
        return matches[0]

    return find()


@main.group()
def player() -> None:
    """Add, block and unblock players; end a player's game."""


@player.command("add")
@click.argument("client_name")
@click.argument("player_id")
@click.option("--currency", required=True)
@click.option("--nickname", default="")
@click.option("--balance", default="0", help="Opening balance, funded by the client.")
@click.pass_context
def player_add(
    ctx: click.Context,
    client_name: str,
    player_id: str,
    currency: str,
    nickname: str,
    balance: str,
) -> None:
    """Add a player to a client, funded from the client's account."""
    amount = _amount(ctx, balance) or 0
    cur = _currency(ctx, currency)

    async def body(s: Services) -> PlayerRecord:
        c = await _find_client(s, client_name)
        return await s.store.run(
            admin.create_player(c, player_id, cur, nickname or player_id, amount, s.clock.now_ms())
        )

    record = _run(ctx, body)
    _emit(ctx, _player_json(record), f"added player {player_id} ({cur} {format_minor(amount)})")


def _set_blocked(ctx: click.Context, client_name: str, player_id: str, blocked: bool) -> None:
    async def body(s: Services) -> PlayerRecord:
        c = await _find_client(s, client_name)
        return await s.store.run(admin.set_blocked(c, player_id, blocked))

    record = _run(ctx, body)
    _emit(ctx, _player_json(record), f"player {player_id} {'blocked' if blocked else 'unblocked'}")


@player.command("block")
@click.argument("client_name")
@click.argument("player_id")
@click.pass_context
def player_block(ctx: click.Context, client_name: str, player_id: str) -> None:
    """Block a player: no more withdrawals; everything else still works."""
    _set_blocked(ctx, client_name, player_id, True)


@player.command("unblock")
@click.argument("client_name")
@click.argument("player_id")
@click.pass_context
def player_unblock(ctx: click.Context, client_name: str, player_id: str) -> None:
    """Unblock a player."""
    _set_blocked(ctx, client_name, player_id, False)


@player.command("end-game")
@click.argument("client_name")
@click.argument("player_id")
@click.pass_context
def player_end_game(ctx: click.Context, client_name: str, player_id: str) -> None:
    """End a player's game (JDB action 17): its game type's withdrawal cooldown starts now."""

    async def body(s: Services) -> tuple[int, PlayerRecord]:
        c = await _find_client(s, client_name)
        now = s.clock.now_ms()
        return now, await s.store.run(jdb.leave_game(c, player_id, now))

    now, record = _run(ctx, body)
    if record.game_left_at_ms == now:
        text = f"player {player_id} left game {record.game_left_type}"
    else:
        text = f"player {player_id} is not in a game"
    _emit(ctx, _player_json(record), text)


@main.command()
@click.argument("client_name")
@click.argument("player_id")
@click.pass_context
def balance(ctx: click.Context, client_name: str, player_id: str) -> None:
    """Show a player's balances."""

    async def body(s: Services) -> PlayerRecord:
        c = await _find_client(s, client_name)
        return await s.store.run(admin.get_player(c, player_id))

    record = _run(ctx, body)
    data = _player_json(record)
    _emit(
        ctx,
        data,
        f"{player_id}: {data['balance']} {record.currency} available"
        f" (held {data['held']}, pending credit {data['pendingCredit']},"
        f" free credit {data['freeCredit']})",
    )


# --- sessions ----------------------------------------------------------------------------


@main.group()
def session() -> None:
    """Game sessions (the seamless entry point)."""


@session.command("open")
@click.argument("client_name")
@click.argument("player_id")
@click.option("--ttl-s", type=click.IntRange(1, 30 * 24 * 3600), default=None)
@click.pass_context
def session_open(ctx: click.Context, client_name: str, player_id: str, ttl_s: int | None) -> None:
    """Create a session token and the game launch URL for a player."""
    settings: Settings = ctx.obj["settings"]

    async def body(s: Services) -> dict[str, Any]:
        c = await _find_client(s, client_name)
        record, _ = await s.store.run(
            admin.open_session(c, player_id, ttl_s or settings.session_ttl_s, s.clock.now_ms())
        )
        return {"token": record.token, "launchUrl": admin.launch_url(c, record.token, player_id)}

    data = _run(ctx, body)
    _emit(ctx, data, json.dumps(data))


# --- checks and demo ---------------------------------------------------------------------


@main.command()
@click.pass_context
def audit(ctx: click.Context) -> None:
    """Verify every ledger invariant; exit 1 with a report on any violation."""

    async def body(s: Services) -> list[str]:
        return await s.store.run(admin.audit())

    violations = _run(ctx, body)
    _emit(
        ctx,
        {"ok": not violations, "violations": violations},
        "ledger audit: clean"
        if not violations
        else "\n".join(["ledger audit FAILED:", *violations]),
    )
    if violations:
        ctx.exit(1)


@main.command()
@click.option("--port", default=8000, show_default=True, type=int, help="Port used in examples.")
@click.pass_context
def demo(ctx: click.Context, port: int) -> None:
    """Set up demo clients and players (idempotent) and print ready-to-paste curl examples."""
    from gamewallet import demo as demo_data

    summary = _run(ctx, lambda s: demo_data.ensure(s))
    if ctx.obj["json"]:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        click.echo(demo_data.instructions(summary, port))


# Commands that live with the part of the system they drive.
main.add_command(worker_command)
main.add_command(simulate_command)
main.add_command(admin_command)

if __name__ == "__main__":  # pragma: no cover
    main()
