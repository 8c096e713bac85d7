"""PostgreSQL for the test suite: one server per session, one fresh database per test.

``pg_admin_url`` (session) is an admin URL of a PostgreSQL server, taken from, in order:

1. ``GAMEWALLET_TEST_DATABASE_URL`` (CI sets it to the machine's server);
2. a throwaway cluster started in a temporary directory on a free port, when PostgreSQL's
   binaries are found (``GAMEWALLET_PG_BINDIR``, else the newest ``/usr/lib/postgresql/*/bin``,
   else ``initdb`` on ``PATH``); it is stopped and deleted at the end of the session;
3. otherwise the test is skipped, or fails if ``GAMEWALLET_REQUIRE_POSTGRES=1``.

``pg_url`` (function) creates a database ``gw_test_<hex>`` at the current migration head (a
copy of a template migrated once per session) and drops it afterwards, in the background.
Tests that use either fixture get the ``postgres`` marker, and the terminal summary counts
them; with ``GAMEWALLET_REQUIRE_POSTGRES=1`` a run in which no PostgreSQL test passed fails,
so CI cannot go green with its PostgreSQL tests silently skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

ENV_URL = "GAMEWALLET_TEST_DATABASE_URL"
ENV_REQUIRE = "GAMEWALLET_REQUIRE_POSTGRES"
ENV_BINDIR = "GAMEWALLET_PG_BINDIR"
POSTGRES_FIXTURES = frozenset({"pg_url", "pg_admin_url"})
UNAVAILABLE = "PostgreSQL not available: set GAMEWALLET_TEST_DATABASE_URL or install PostgreSQL"

START_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10
START_ATTEMPTS_MAX = 3  # a free port can be taken between choosing it and the server binding it

_T = TypeVar("_T")


def _postgres_required() -> bool:
    return os.environ.get(ENV_REQUIRE, "") == "1"


def _unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when the run requires PostgreSQL."""
    if _postgres_required():
        pytest.fail(f"{reason} ({ENV_REQUIRE}=1)", pytrace=False)
    pytest.skip(reason)


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` on a private event loop, leaving the loop pytest-asyncio manages untouched.

    The fixtures are sync so that sync and async tests alike can use them.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def _with_database(url: str, database: str) -> str:
    """``url`` with its path (the database name) replaced."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


async def _execute(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


# --- finding and running a throwaway cluster ----------------------------------------------------


def _pg_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None if PostgreSQL isn't installed."""
    configured = os.environ.get(ENV_BINDIR)
    if configured is not None:
        bindir = Path(configured)
        return bindir if (bindir / "initdb").is_file() else None
    installed = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.is_file()]
    if installed:
        # Newest major version first: "15" > "9.6" numerically, not as strings.
        return max(installed, key=lambda bindir: _version_key(bindir.parent.name))
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class _Cluster:
    """A PostgreSQL cluster in a temporary directory, owned by ``postgres`` when we are root."""

    bindir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gamewallet-pg-")))
    port: int = 0

    def __post_init__(self) -> None:
        # PostgreSQL refuses to run as root: hand the directory to the postgres user instead.
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.run_as:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, tool: str, *args: str) -> None:
        command = [*self.run_as, str(self.bindir / tool), *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} failed ({result.returncode}): {result.stdout}{result.stderr}{log}"
            )

    def start(self) -> None:
        self._pg(
            "initdb",
            *("-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
            *("--locale=C", "--no-sync", "--no-instructions"),
        )
        for attempt in range(1, START_ATTEMPTS_MAX + 1):
            self.port = _free_port()
            # Durability off: this cluster lives for one test session.
            options = (
                f"-h 127.0.0.1 -p {self.port} -k {self.root} -F"
                " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                self._pg(
                    "pg_ctl",
                    *("-D", str(self.data), "-l", str(self.log), "-o", options),
                    *("-w", "-t", str(START_TIMEOUT_S), "start"),
                )
            except RuntimeError:
                if attempt == START_ATTEMPTS_MAX:
                    raise
            else:
                return

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """Admin URL (superuser, database ``postgres``) of the server the tests may use."""
    configured = os.environ.get(ENV_URL)
    if configured:
        try:
            _run(_execute(configured, "select 1"))
        except (OSError, asyncpg.PostgresError) as error:
            pytest.fail(f"{ENV_URL} is set but unusable: {error!r}", pytrace=False)
        yield configured
        return

    bindir = _pg_bindir()
    if bindir is None:
        _unavailable(UNAVAILABLE)
    if os.geteuid() == 0 and not _has_postgres_user():
        _unavailable(f"{UNAVAILABLE} (running as root and there is no 'postgres' user)")
    cluster = _Cluster(bindir)
    try:
        cluster.start()
        yield cluster.admin_url
    finally:
        cluster.stop()


def _has_postgres_user() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


@pytest.fixture(scope="session")
def _pg_template(pg_admin_url: str) -> Iterator[str]:
    """A database migrated to the current head once per session, cloned by ``pg_url``.

    Copying a template is a file copy inside PostgreSQL: much cheaper than running every
    migration for every test.
    """
    from gamewallet.store import migrate

    name = f"gw_tpl_{uuid.uuid4().hex}"
    _run(_execute(pg_admin_url, f'CREATE DATABASE "{name}"'))
    try:
        migrate.upgrade(_with_database(pg_admin_url, name))
        yield name
    finally:
        _dropper.join()
        _run(_execute(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class _Dropper:
    """Drops finished tests' databases on a background thread, so no test waits for it."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def drop(self, admin_url: str, name: str) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="pg-dropper", daemon=True)
            self._thread.start()
        self._queue.put((admin_url, name))

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            admin_url, name = item
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                _run(_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def join(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None


_dropper = _Dropper()


@pytest.fixture
def pg_url(pg_admin_url: str, _pg_template: str) -> Iterator[str]:
    """URL of a new database at the current migration head, dropped after the test."""
    name = f"gw_test_{uuid.uuid4().hex}"
    _run(_execute(pg_admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{_pg_template}"'))
    try:
        yield _with_database(pg_admin_url, name)
    finally:
        _dropper.drop(pg_admin_url, name)


# --- the postgres marker and its summary --------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_PostgresSummary(config), "gamewallet-postgres-summary")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if POSTGRES_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


class _PostgresSummary:
    """Counts the ``postgres`` tests' outcomes; fails a run that requires them but passed none."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.passed: set[str] = set()
        self.skipped: set[str] = set()
        self.failed: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if "postgres" not in report.keywords:
            return
        if report.skipped:
            self.skipped.add(report.nodeid)
        elif report.failed:  # in setup, call or teardown
            self.failed.add(report.nodeid)
        elif report.when == "call":
            self.passed.add(report.nodeid)

    def missing_postgres_run(self) -> bool:
        ran = self.passed - self.failed
        return _postgres_required() and not ran and not self.config.option.collectonly

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.missing_postgres_run() and exitstatus in (
            pytest.ExitCode.OK,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        passed = self.passed - self.failed
        terminalreporter.write_line(
            f"postgres tests: {len(passed)} passed, {len(self.skipped)} skipped,"
            f" {len(self.failed)} failed"
        )
        if self.missing_postgres_run():
            terminalreporter.write_line(
                f"FAILED: {ENV_REQUIRE}=1 but no PostgreSQL test passed", red=True, bold=True
            )
