"""Shared test helpers (real servers and fixtures that tests import explicitly)."""
