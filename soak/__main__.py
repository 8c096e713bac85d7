"""``python -m soak``: run the soak (see :mod:`soak.run`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from soak.run import PROFILES, main


@click.command()
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default="short", show_default=True)
@click.option("--seed", type=int, default=None, help="Seed of the fault timing and the traffic.")
@click.option("--keep", is_flag=True, help="Keep the run's directory (logs, database) after it.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the summary (JSON) to this file.",
)
def cli(profile: str, seed: int | None, keep: bool, report: Path | None) -> None:
    """Soak the wallet: traffic on all three protocols while processes are killed."""
    sys.exit(main(profile, seed, keep, report))


if __name__ == "__main__":
    cli()
