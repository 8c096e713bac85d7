"""The ``gamewallet simulate`` command: realistic traffic against any server of a protocol.

Thin: it checks the options, builds a :class:`~gamewallet.clients.simulator.SimConfig`, runs
the simulation and prints its report (text, or one JSON document with ``--json``). Exit status
0 = no mismatch; 1 = a mismatch, a broken protocol promise or an outcome never learned;
2 = the run could not be done (bad options, setup failed, deadline passed).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click
import httpx

from gamewallet.clients.simulator import Credentials, Fault, SimConfig, run_simulation
from gamewallet.clients.simulator.seamless import tokens_from
from gamewallet.settings import Settings

#: Most operations one run may play (players x rounds): the simulator is a test, not a load.
MAX_OPERATIONS = 1_000_000
EXIT_MISMATCH = 1
EXIT_UNUSABLE = 2


def _faults(text: str) -> frozenset[Fault]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    try:
        return frozenset(Fault(name) for name in names)
    except ValueError:
        known = ", ".join(f.value for f in Fault)
        raise click.BadParameter(f"faults are a comma list of: {known}") from None


def _url(text: str) -> str:
    url = httpx.URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise click.BadParameter("--url must be an http(s) URL with a host")
    return text.rstrip("/")


@click.command("simulate")
@click.option(
    "--protocol", type=click.Choice(["seamless", "hrg", "jdb"]), required=True, help="Protocol."
)
@click.option("--url", required=True, help="Base URL of the server under test (the only target).")
@click.option("--username", help="Seamless: Basic user of the game.")
@click.option("--password", help="Seamless: Basic password of the game.")
@click.option("--client-id", help="HRG: Basic user (client_id).")
@click.option("--client-secret", help="HRG: Basic password (client_secret).")
@click.option("--agent", help="HRG: agentId.")
@click.option("--dc", help="JDB: domain code.")
@click.option("--parent", help="JDB: agent (parent).")
@click.option("--key", help="JDB: 16-character AES key.")
@click.option("--iv", help="JDB: 16-character AES IV.")
@click.option(
    "--tokens-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Seamless: session tokens, one per line.",
)
@click.option(
    "--setup-db",
    help="Seamless, our server only: its database URL, to create players and sessions.",
)
@click.option("--currency", default="XAG", show_default=True, help="Seamless --setup-db players.")
@click.option("--players", type=click.IntRange(1, 10_000), default=5, show_default=True)
@click.option("--rounds", type=click.IntRange(0, 100_000), default=20, show_default=True)
@click.option("--faults", "fault_text", default="", help="Comma list: drop,dup,timeout,reorder.")
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.15,
    show_default=True,
    help="Chance that a call carries a fault.",
)
@click.option("--seed", type=int, help="Seed of every random choice (printed in the report).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option("--timeout-s", type=click.FloatRange(min=0.01), help="Timeout of one call.")
@click.option(
    "--deadline-s",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    help="The run stops (and fails) after this long.",
)
@click.option(
    "--records-db",
    default="memory://",
    show_default=True,
    help="HRG/JDB: where the transfer records are kept.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
@click.pass_context
def simulate(
    ctx: click.Context,
    protocol: str,
    url: str,
    username: str | None,
    password: str | None,
    client_id: str | None,
    client_secret: str | None,
    agent: str | None,
    dc: str | None,
    parent: str | None,
    key: str | None,
    iv: str | None,
    tokens_file: Path | None,
    setup_db: str | None,
    currency: str,
    players: int,
    rounds: int,
    fault_text: str,
    fault_rate: float,
    seed: int | None,
    concurrency: int,
    timeout_s: float | None,
    deadline_s: float,
    records_db: str,
    as_json: bool,
) -> None:
    """Play PLAYERS x ROUNDS operations against a server, with faults, and check every balance.

    \b
    gamewallet simulate --protocol hrg --url http://127.0.0.1:8000 --client-id hrgclient \\
        --client-secret hrg-demo-secret --agent hrgag --players 5 --rounds 20
    """
    obj: dict[str, Any] = ctx.obj if isinstance(ctx.obj, dict) else {}
    settings: Settings = obj.get("settings") or Settings()
    if players * rounds > MAX_OPERATIONS:
        raise click.BadParameter(f"players x rounds is limited to {MAX_OPERATIONS}")
    tokens = tokens_from(tokens_file.read_text().splitlines()) if tokens_file else ()
    config = SimConfig(
        protocol=protocol,
        url=_url(url),
        credentials=Credentials(
            username=username,
            password=password,
            client_id=client_id,
            client_secret=client_secret,
            agent=agent,
            dc=dc,
            parent=parent,
            key=key,
            iv=iv,
        ),
        players=players,
        rounds=rounds,
        faults=_faults(fault_text),
        fault_rate=fault_rate,
        seed=seed,
        concurrency=concurrency,
        timeout_s=timeout_s or settings.http_timeout_s,
        deadline_s=deadline_s,
        tokens=tokens,
        setup_db=setup_db,
        currency=currency,
        records_db=records_db,
    )
    report = asyncio.run(run_simulation(config))
    if as_json or obj.get("json"):
        click.echo(json.dumps(report.as_json(), sort_keys=True))
    else:
        click.echo(report.as_text())
    if report.error:
        ctx.exit(EXIT_UNUSABLE)
    if not report.ok:
        ctx.exit(EXIT_MISMATCH)
