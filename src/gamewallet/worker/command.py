"""The ``gamewallet worker`` command (background delivery, reconciliation, purge)."""

from __future__ import annotations

import click


@click.command("worker")
def worker() -> None:
    """Run the background worker (not implemented yet)."""
    raise click.ClickException("the worker is not implemented yet")
