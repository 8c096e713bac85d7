"""What the admin API and the admin pages both do, written once: paging limits, filters read
from query strings, client credentials, the cached dashboard, and the CSV export.

Everything here calls use cases of :mod:`gamewallet.service.backoffice`; nothing touches the
database directly. The dashboard is computed at most once per ``admin_cache_s`` per process
(its queries read whole index ranges), and the export streams its rows page by page, up to
``admin_export_rows_max``, so neither a large ledger nor a wide range holds much memory.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gamewallet.admin import schemas
from gamewallet.admin.formats import FormatError, csv_text, iso, money, parse_time
from gamewallet.core.money import AmountError, parse_amount
from gamewallet.core.states import OpState
from gamewallet.service import admin, backoffice
from gamewallet.service.backoffice import Dashboard, OperationFilter, Principal
from gamewallet.service.common import hash_secret
from gamewallet.service.context import Services
from gamewallet.store.records import ClientRecord

#: Rows per page read by the CSV export.
EXPORT_PAGE = 1000
CLIENT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,50}")
CURRENCY = re.compile(r"[A-Z]{3}")
#: Client settings the back-office may set, per protocol (the rest is CLI-only).
CONFIG_KEYS = {
    "seamless": frozenset(
        {"allow_ips", "game_url", "integration_url", "payment_callback_url", "payment_secret"}
    ),
    "hrg": frozenset({"allow_ips", "game_url"}),
    "jdb": frozenset({"allow_ips", "game_url", "parent", "aes_key", "aes_iv"}),
}
EXPORT_COLUMNS = (
    "operation_id",
    "created_at_utc",
    "updated_at_utc",
    "client",
    "protocol",
    "player",
    "namespace",
    "caller_id",
    "kind",
    "state",
    "currency",
    "amount",
    "free_credit",
    "actor",
    "reason",
)


def _aes_secret() -> str:
    """16 URL-safe characters (12 random bytes), the length JDB keys and IVs have."""
    return secrets.token_urlsafe(12)


@dataclass
class Backoffice:
    """The back-office of one app: its services and its dashboard cache."""

    services: Services
    _dashboard: tuple[float, Dashboard] | None = field(default=None, repr=False)

    # --- paging and filters --------------------------------------------------------------

    def page(self, offset: int, limit: int) -> tuple[int, int]:
        """A checked (offset, limit): limit clamped to 1..admin_page_size_max."""
        if offset < 0:
            raise FormatError("offset must be 0 or more")
        return offset, max(1, min(limit, self.services.settings.admin_page_size_max))

    @staticmethod
    def operation_filter(
        *,
        client: int | None = None,
        player: int | None = None,
        kind: str | None = None,
        state: str | None = None,
        since: str | None = None,
        until: str | None = None,
        ns: str | None = None,
    ) -> OperationFilter:
        """A filter from query-string values: ``kind`` and ``state`` are comma-separated
        lists; ``since`` / ``until`` are dates (``until`` includes its day) or ISO times."""
        states: tuple[OpState, ...] | None = None
        if state:
            try:
                states = tuple(OpState(s.strip()) for s in state.split(",") if s.strip())
            except ValueError as exc:
                allowed = ", ".join(s.value for s in OpState)
                raise FormatError(f"state must be among {allowed}") from exc
        kinds = tuple(k.strip() for k in kind.split(",") if k.strip()) if kind else None
        since_ms = parse_time(since)
        until_ms = parse_time(until, end_of_day=True)
        if since_ms is not None and until_ms is not None and until_ms <= since_ms:
            raise FormatError("until must be after since")
        return OperationFilter(
            client_id=client,
            player_id=player,
            kinds=kinds or None,
            states=states or None,
            since_ms=since_ms,
            until_ms=until_ms,
            ns=ns or None,
        )

    # --- clients -------------------------------------------------------------------------

    async def create_client(
        self, data: schemas.ClientIn, principal: Principal
    ) -> tuple[ClientRecord, schemas.Credentials]:
        """Check and add a client; generate the secrets it was not given (shown once)."""
        if not CLIENT_NAME.fullmatch(data.name):
            raise FormatError("name: 1-50 letters, digits, '_', '.' or '-'")
        unknown = set(data.config) - CONFIG_KEYS[data.protocol]
        if unknown:
            raise FormatError(f"unknown config keys for {data.protocol}: {sorted(unknown)}")
        config = dict(data.config)
        credentials = schemas.Credentials()
        secret = data.secret
        if data.protocol == "jdb":
            if data.currency is None or not CURRENCY.fullmatch(data.currency):
                raise FormatError("a JDB domain needs a 3-letter currency")
            if "parent" not in config:
                raise FormatError("a JDB domain needs config.parent (its agent id)")
            for name, shown in (("aes_key", "aesKey"), ("aes_iv", "aesIv")):
                if name not in config:
                    config[name] = _aes_secret()
                    setattr(credentials, shown, config[name])
                elif len(str(config[name])) != 16:
                    raise FormatError(f"config.{name} must be 16 characters")
            secret = None
        else:
            if not data.username:
                raise FormatError(f"a {data.protocol} client needs a username")
            if data.protocol == "hrg" and (
                data.currency is None or not CURRENCY.fullmatch(data.currency)
            ):
                raise FormatError("an HRG agent needs a 3-letter currency")
            if not secret:
                secret = secrets.token_urlsafe(24)
                credentials.secret = secret
        credit_limit = None
        if data.creditLimit is not None:
            try:
                credit_limit = parse_amount(data.creditLimit, allow_zero=True)
            except AmountError as exc:
                raise FormatError(f"creditLimit: {exc.reason}") from exc
        new = admin.NewClient(
            data.protocol,
            data.name,
            data.username if data.protocol != "jdb" else None,
            secret,
            data.currency if data.protocol != "seamless" else None,
            credit_limit,
            config,
        )
        s = self.services
        client = await s.store.run(
            backoffice.create_client(new, s.clock.now_ms(), s.key, principal)
        )
        await s.clients.reload()
        return client, credentials

    async def rotate_secret(
        self, client_id: int, principal: Principal
    ) -> tuple[ClientRecord, schemas.Credentials]:
        """New credentials for a client: a new secret, or a new JDB key and IV (shown once).
        The old ones stop working at once in this process, and within the client cache's
        TTL in the others."""
        s = self.services
        client = await s.store.run(backoffice.get_client(client_id))
        credentials = schemas.Credentials()
        changes: dict[str, Any]
        if client.protocol == "jdb":
            credentials.aesKey, credentials.aesIv = _aes_secret(), _aes_secret()
            changes = {
                "config": {
                    **client.config,
                    "aes_key": credentials.aesKey,
                    "aes_iv": credentials.aesIv,
                }
            }
        else:
            credentials.secret = secrets.token_urlsafe(24)
            changes = {"secret_hash": hash_secret(credentials.secret, s.key)}
        updated = await s.store.run(
            backoffice.rotate_secret(client.id, changes, s.clock.now_ms(), principal)
        )
        await s.clients.reload()
        return updated, credentials

    # --- the dashboard -------------------------------------------------------------------

    async def dashboard(self) -> Dashboard:
        """The dashboard's figures, reused for ``admin_cache_s``."""
        cached = self._dashboard
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.services.settings.admin_cache_s:
            return cached[1]
        figures = await self.services.store.run(backoffice.dashboard(self.services.clock.now_ms()))
        self._dashboard = (now, figures)
        return figures

    def forget_dashboard(self) -> None:
        """Drop the cached figures (after a change staff expect to see at once)."""
        self._dashboard = None

    # --- the CSV export ------------------------------------------------------------------

    async def export_csv(self, where: OperationFilter) -> AsyncIterator[bytes]:
        """The operations matching ``where``, oldest first, as CSV (UTF-8 with a BOM so that
        spreadsheets read accents right), one chunk per page."""
        s = self.services
        clients = {c.id: c for c in await s.store.run(backoffice.list_clients())}
        players: dict[int, str] = {}
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        yield ("\ufeff" + buffer.getvalue()).encode()
        written, offset = 0, 0
        limit_rows = s.settings.admin_export_rows_max
        while written < limit_rows:
            size = min(EXPORT_PAGE, limit_rows - written)
            page, names = await s.store.run(
                backoffice.operations_with_players(where, offset, size, players)
            )
            players.update(names)
            buffer.seek(0)
            buffer.truncate()
            for o in page:
                client = clients.get(o.client_id)
                writer.writerow(
                    (
                        o.id,
                        iso(o.created_at_ms),
                        iso(o.updated_at_ms),
                        csv_text(client.name if client else str(o.client_id)),
                        client.protocol if client else "",
                        csv_text(players.get(o.player_id, "")),
                        o.ns,
                        csv_text(o.ext_id),
                        csv_text(o.kind),
                        o.state.value,
                        o.currency,
                        money(o.amount_minor),
                        money(o.free_minor),
                        csv_text(str(o.detail.get("actor", ""))),
                        csv_text(str(o.detail.get("reason", ""))),
                    )
                )
            if page:
                yield buffer.getvalue().encode()
            written += len(page)
            offset += len(page)
            if len(page) < size:
                break


def names_of(clients: list[ClientRecord]) -> Mapping[int, str]:
    """Client names by id."""
    return {c.id: c.name for c in clients}
