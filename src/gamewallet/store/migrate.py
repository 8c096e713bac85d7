"""Apply the schema migrations (Alembic) to a database given by its gamewallet URL.

``sqlite:///path`` and ``postgresql://…`` are the two URL forms gamewallet accepts; this
module maps them to SQLAlchemy's dialect URLs, which only the migrations use.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

_HERE = Path(__file__).resolve().parent


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy URL the migrations use for a gamewallet database URL."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return url
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(_HERE / "migrations"))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (blocking; run off the event loop)."""
    command.upgrade(alembic_config(url), revision)


def current_head() -> str:
    """The newest revision shipped with this version of gamewallet."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite:///:memory:")).get_current_head()
    assert head is not None
    return head
