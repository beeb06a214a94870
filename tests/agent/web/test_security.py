"""Who may call the HTTP API (agent/web/security.py) and the [web] config's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config
from agent.web.security import Guard, ensure_token, read_token

OWN = {"host": "127.0.0.1:8765"}


def test_token_is_made_once_private_and_kept(tmp_path: Path):
    t = ensure_token("", tmp_path)
    assert len(t) >= 32 and (tmp_path / "web.token").stat().st_mode & 0o777 == 0o600
    assert ensure_token("", tmp_path) == t == read_token(tmp_path)
    assert ensure_token("chosen-by-the-user", tmp_path) == "chosen-by-the-user"  # the config's wins
    assert read_token(tmp_path / "nowhere") is None


@pytest.mark.parametrize(
    ("method", "headers", "cookies", "want"),
    [
        ("GET", {}, {}, 401),
        ("GET", {"x-sensorium-token": "s3cret"}, {}, None),
        ("GET", {}, {"sensorium_token": "s3cret"}, None),  # <img>, EventSource
        ("GET", {"x-sensorium-token": "s3cre"}, {}, 401),
        ("POST", {}, {"sensorium_token": "s3cret"}, 401),  # a write needs the header a cross-site page cannot set
        ("POST", {"x-sensorium-token": "s3cret"}, {}, None),
        ("POST", {"x-sensorium-token": "s3cret", "origin": "http://127.0.0.1:8765"}, {}, None),
        ("POST", {"x-sensorium-token": "s3cret", "origin": "http://evil.example"}, {}, 403),
        ("POST", {"x-sensorium-token": "s3cret", "origin": "null"}, {}, 403),  # sandboxed frame, file://
        ("GET", {"x-sensorium-token": "s3cret", "origin": "http://localhost:8765"}, {}, 403),  # not the same origin
    ],
)
def test_guard(method, headers, cookies, want):
    no = Guard("s3cret").check(method, {**OWN, **headers}, cookies, "http")
    assert (no.status if no else None) == want, no


def test_off_host_needs_a_long_token(tmp_path: Path):
    path = tmp_path / "cfg.toml"
    path.write_text("[web]\nhost = '0.0.0.0'\n")
    with pytest.raises(config.ConfigError, match=r"web\.token.*TLS"):
        config.load(path)
    path.write_text("[web]\nhost = '0.0.0.0'\ntoken = 'a-long-enough-secret'\n")
    assert config.load(path).web.host == "0.0.0.0"
    path.write_text("[web]\nport = 70000\n")
    with pytest.raises(config.ConfigError, match=r"'web\.port' must be 0-65535"):
        config.load(path)
