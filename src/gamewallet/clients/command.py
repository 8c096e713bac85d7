"""The ``gamewallet simulate`` command (traffic against any server of a protocol)."""

from __future__ import annotations

import click


@click.command("simulate")
def simulate() -> None:
    """Play simulated traffic against a server (not implemented yet)."""
    raise click.ClickException("the simulator is not implemented yet")
