"""The ``gamewallet admin`` command group (back-office users)."""

from __future__ import annotations

import click


@click.group("admin")
def admin() -> None:
    """Back-office users and tokens (not implemented yet)."""
