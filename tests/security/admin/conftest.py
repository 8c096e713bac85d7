"""The back-office security tests reuse the back-office test world (tests/admin/conftest.py):
staff users ``olga`` (operator) and ``victor`` (viewer), API tokens, a seamless client."""

from tests.admin.conftest import clock, database_url, desk, services, settings

__all__ = ["clock", "database_url", "desk", "services", "settings"]
