"""Who may use the HTTP API: a token on every request, and no cross-site writes.

The page and API read memory (screen text, transcripts), so even on loopback every /api and /thumbs request
carries a token: another local user, or a web page open in the browser, cannot read or change memory. The
token is in <data_dir>/web.token (0600, made on first start) unless the config names one; `sensorium status`
prints the page's link with it (#token=..., a URL fragment: it never reaches a server log).
Reads may carry it in a cookie (so <img> and EventSource work); writes need it in the X-Sensorium-Token
header, which a cross-site page cannot set without a CORS preflight we never grant, and a request whose
Origin is not the page's own is refused outright.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

HEADER = "x-sensorium-token"
COOKIE = "sensorium_token"
FILE = "web.token"


def token_file(data_dir: Path) -> Path:
    return Path(data_dir) / FILE


def read_token(data_dir: Path) -> str | None:
    """The stored token, None when the daemon never made one (or it cannot be read)."""
    try:
        return token_file(data_dir).read_text().strip() or None
    except OSError:
        return None


def ensure_token(configured: str, data_dir: Path) -> str:
    """The configured token, else the stored one, else a new one written 0600 (readable by this user only)."""
    if configured:
        return configured
    found = read_token(data_dir)
    if found:
        return found
    token = secrets.token_urlsafe(24)
    path = token_file(data_dir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


@dataclass(frozen=True)
class Refusal:
    status: int
    error: str


class Guard:
    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def _matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self._token)

    def check(self, method: str, headers: dict[str, str], cookies: dict[str, str], scheme: str) -> Refusal | None:
        """None when the request may go on; else why not (HTTP status and a sentence)."""
        origin = headers.get("origin")
        if origin is not None and origin != f"{scheme}://{headers.get('host', '')}":
            return Refusal(403, f"requests from {origin} are refused: only the page served here may call the API")
        if method == "GET" and self._matches(cookies.get(COOKIE)):
            return None
        if self._matches(headers.get(HEADER)):
            return None
        where = "the X-Sensorium-Token header" if method != "GET" else "the X-Sensorium-Token header or cookie"
        return Refusal(401, f"missing or wrong token in {where}: open the link `sensorium status` prints")
