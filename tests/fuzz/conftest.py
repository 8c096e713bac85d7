"""The fuzz tests use the security tests' fixtures: services on a fresh database, the world
(two clients of each protocol) and in-process HTTP clients of the whole app."""

from tests.security.conftest import clock, database_url, http, make_http, services, world

__all__ = ["clock", "database_url", "http", "make_http", "services", "world"]
