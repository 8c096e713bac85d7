"""The ``gamewallet admin`` command group: back-office users and API tokens.

``create-user NAME --role operator|viewer`` takes ``--password``, or asks for one on a
terminal, or (``--generate``, or no terminal) makes one up and prints it once. ``create-token
NAME`` prints a new API token once; only its keyed hash is stored. Every change is recorded
in the staff-action trail with the actor ``cli``. Passwords are hashed (argon2) before the
database is opened, and no secret is ever written anywhere but the terminal that asked.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import click

from gamewallet.admin.formats import iso
from gamewallet.core.errors import WalletError
from gamewallet.service import backoffice
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import admin_ops, open_store
from gamewallet.store.port import do

T = TypeVar("T")
ACTOR = "cli"
MIN_PASSWORD = 10


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj or {}
    settings = obj.get("settings")
    return settings if isinstance(settings, Settings) else Settings.from_env()


def _as_json(ctx: click.Context) -> bool:
    return bool((ctx.find_root().obj or {}).get("json"))


def _fail(ctx: click.Context, message: str) -> NoReturn:
    if _as_json(ctx):
        click.echo(json.dumps({"error": message}))
    else:
        click.echo(f"error: {message}", err=True)
    ctx.exit(1)
    raise AssertionError("unreachable")  # ctx.exit raises


def _emit(ctx: click.Context, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data, sort_keys=True) if _as_json(ctx) else text)


def _run(ctx: click.Context, body: Callable[[Services], Awaitable[T]]) -> T:
    """Open the store (migrating the embedded default), run ``body``, close."""
    settings = _settings(ctx)

    async def main() -> T:
        services = Services(
            settings,
            open_store(
                settings.database_url,
                pool_size=1,
                sqlite_synchronous=settings.sqlite_synchronous,
            ),
        )
        await services.start()
        try:
            return await body(services)
        finally:
            await services.close()

    try:
        return asyncio.run(main())
    except WalletError as exc:
        _fail(ctx, exc.detail)


def _password(ctx: click.Context, given: str | None, generate: bool) -> tuple[str, bool]:
    """The password to set and whether it was generated (then it must be shown)."""
    if given is not None:
        if len(given) < MIN_PASSWORD:
            _fail(ctx, f"a password needs at least {MIN_PASSWORD} characters")
        return given, False
    if generate or not sys.stdin.isatty():
        return backoffice.new_password(), True
    while True:
        typed: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        if len(typed) >= MIN_PASSWORD:
            return typed, False
        click.echo(f"A password needs at least {MIN_PASSWORD} characters.", err=True)


@click.group("admin")
def admin() -> None:
    """Back-office users (sign in at /admin) and API tokens (for /admin/api)."""


@admin.command("create-user")
@click.argument("name")
@click.option("--role", type=click.Choice(backoffice.ROLES), required=True)
@click.option("--password", help="Otherwise asked for on a terminal, or generated.")
@click.option("--generate", is_flag=True, help="Generate a password and print it once.")
@click.pass_context
def create_user(
    ctx: click.Context, name: str, role: str, password: str | None, generate: bool
) -> None:
    """Add a back-office user who signs in with a password."""
    secret, generated = _password(ctx, password, generate)
    digest = backoffice.hash_password(secret)

    async def body(s: Services) -> admin_ops.AdminUserRecord:
        return await s.store.run(
            backoffice.create_user(name, role, digest, s.clock.now_ms(), actor=ACTOR)
        )

    user = _run(ctx, body)
    data: dict[str, Any] = {"name": user.name, "role": user.role}
    text = f"added {user.role} {user.name}"
    if generated:
        data["password"] = secret
        text += f"\npassword (shown once): {secret}"
    _emit(ctx, data, text)


@admin.command("set-password")
@click.argument("name")
@click.option("--password", help="Otherwise asked for on a terminal, or generated.")
@click.option("--generate", is_flag=True, help="Generate a password and print it once.")
@click.pass_context
def set_password(ctx: click.Context, name: str, password: str | None, generate: bool) -> None:
    """Replace a user's password, unlock them and end their sessions."""
    secret, generated = _password(ctx, password, generate)
    digest = backoffice.hash_password(secret)

    async def body(s: Services) -> None:
        await s.store.run(backoffice.set_password(name, digest, s.clock.now_ms(), actor=ACTOR))

    _run(ctx, body)
    data: dict[str, Any] = {"name": name}
    text = f"password of {name} replaced"
    if generated:
        data["password"] = secret
        text += f"\npassword (shown once): {secret}"
    _emit(ctx, data, text)


@admin.command("create-token")
@click.argument("name")
@click.option("--role", type=click.Choice(backoffice.ROLES), default="viewer", show_default=True)
@click.pass_context
def create_token(ctx: click.Context, name: str, role: str) -> None:
    """Make an API token for scripts (Authorization: Bearer …), printed once."""
    token = backoffice.new_api_token()

    async def body(s: Services) -> admin_ops.AdminTokenRecord:
        digest = backoffice.secret_hash(token, s.key)
        return await s.store.run(
            backoffice.create_token(name, role, digest, s.clock.now_ms(), actor=ACTOR)
        )

    record = _run(ctx, body)
    _emit(
        ctx,
        {"name": record.name, "role": record.role, "token": token},
        f"token {record.name} ({record.role}), shown once:\n{token}",
    )


@admin.command("revoke-token")
@click.argument("name")
@click.pass_context
def revoke_token(ctx: click.Context, name: str) -> None:
    """Revoke an API token: it stops working at once."""

    async def body(s: Services) -> None:
        await s.store.run(backoffice.revoke_token(name, s.clock.now_ms(), actor=ACTOR))

    _run(ctx, body)
    _emit(ctx, {"name": name, "revoked": True}, f"token {name} revoked")


@admin.command("list")
@click.pass_context
def list_principals(ctx: click.Context) -> None:
    """List users and tokens (never their secrets)."""

    async def body(
        s: Services,
    ) -> tuple[list[admin_ops.AdminUserRecord], list[admin_ops.AdminTokenRecord]]:
        users = await s.store.run(do(admin_ops.ListAdminUsers()))
        tokens = await s.store.run(do(admin_ops.ListAdminTokens()))
        return users, tokens

    users, tokens = _run(ctx, body)
    data = {
        "users": [
            {
                "name": u.name,
                "role": u.role,
                "disabled": u.disabled,
                "lastLogin": iso(u.last_login_at_ms),
            }
            for u in users
        ],
        "tokens": [
            {
                "name": t.name,
                "role": t.role,
                "createdBy": t.created_by,
                "lastUsed": iso(t.last_used_at_ms),
                "revoked": t.revoked_at_ms is not None,
            }
            for t in tokens
        ],
    }
    lines = [f"user  {u['role']:8} {u['name']}" for u in data["users"]]
    lines += [
        f"token {t['role']:8} {t['name']}{' (revoked)' if t['revoked'] else ''}"
        for t in data["tokens"]
    ]
    _emit(ctx, data, "\n".join(lines) or "no users or tokens")
