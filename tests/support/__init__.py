"""Helpers the tests share (imported by tests and conftest; no tests here)."""
