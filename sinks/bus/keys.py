"""CURVE keys for the bus and the query endpoint: encryption plus a list of client keys that may connect.

Without CURVE anyone who can reach a TCP port can read every vector and query the memory, so an endpoint
that listens off-host (tcp:// other than 127.0.0.1/localhost/::1) binds only with keys. The keys dir
(`sensorium keys generate`, mode 0700) holds zmq.auth certificate files:

    server.key  server.key_secret      the daemon's keypair (the public half goes to every client)
    client.key  client.key_secret      a client keypair for this machine's own tools
    authorized/*.key                   public keys of the clients allowed in (client.key is copied here)

A client machine needs client.key_secret (its own pair) and server.key. Imports only pyzmq, so the client
library can use it.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class KeysError(RuntimeError):
    """Keys are missing or unreadable; the message says which file and how to make it."""


def tcp_host(endpoint: str) -> str | None:
    """Host part of a tcp:// endpoint, None for any other transport."""
    if not endpoint.startswith("tcp://"):
        return None
    return endpoint[len("tcp://") :].rsplit(":", 1)[0].strip("[]")


def off_host(endpoint: str) -> bool:
    """True when binding `endpoint` would accept connections from other machines."""
    host = tcp_host(endpoint)
    return host is not None and host not in LOOPBACK


def generate(keys_dir: Path, force: bool = False) -> dict[str, Path]:
    """Write a server and a client keypair and authorise the client; refuses to overwrite unless `force`."""
    keys_dir = Path(keys_dir)
    if (keys_dir / "server.key_secret").exists() and not force:
        raise FileExistsError(f"{keys_dir} already has keys (--force replaces them; clients then need new ones)")
    keys_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new data dir is private too
    keys_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    auth = keys_dir / "authorized"
    if force and auth.exists():
        shutil.rmtree(auth)
    auth.mkdir(mode=0o700, exist_ok=True)
    out = {}
    for name in ("server", "client"):
        public, secret = zmq.auth.create_certificates(keys_dir, name)
        os.chmod(secret, 0o600)
        out[name], out[f"{name}_secret"] = Path(public), Path(secret)
    shutil.copy(out["client"], auth / "client.key")
    out["authorized"] = auth
    return out


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise KeysError(f"CURVE key {path} not found; run `sensorium keys generate`")
    try:
        public, sec = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as e:
        raise KeysError(f"CURVE key {path} is unreadable: {e}") from None
    if secret and not sec:
        raise KeysError(f"CURVE key {path} has no secret key (expected a *.key_secret file)")
    return public, sec


@dataclass(frozen=True)
class ClientKeys:
    """What a client sets on its socket: its own keypair and the server's public key."""

    public: bytes
    secret: bytes
    server: bytes

    @classmethod
    def load(cls, keys_dir: Path) -> ClientKeys:
        public, secret = _load(Path(keys_dir) / "client.key_secret", secret=True)
        server, _ = _load(Path(keys_dir) / "server.key", secret=False)
        return cls(public, secret, server)  # type: ignore[arg-type]

    def apply(self, sock: zmq.Socket) -> None:
        sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = self.public, self.secret, self.server


class Authorized:
    """ZAP credentials: a client key is let in while its .key file is in `folder`, read at each handshake, so
    a key put there (or removed) counts for the next connection, without a restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def callback(self, domain: str, key: bytes) -> bool:
        for path in self.folder.glob("*.key"):
            try:
                if zmq.auth.load_certificate(path)[0] == key:
                    return True
            except (ValueError, OSError) as e:  # an unreadable file lets nobody in, the others still count
                log.warning("CURVE key %s is unreadable: %s", path, e)
        return False


class CurveServer:
    """Server keypair plus a ZAP authenticator that lets in only the keys in `authorized/`.

    One per ZMQ context (ZAP is per context); start it before binding, so no client connects unchecked.
    """

    def __init__(self, keys_dir: Path, ctx: zmq.Context | None = None) -> None:
        keys_dir = Path(keys_dir)
        self.public, self.secret = _load(keys_dir / "server.key_secret", secret=True)
        self.authorized = keys_dir / "authorized"
        if not self.authorized.is_dir() or not any(self.authorized.glob("*.key")):
            raise KeysError(f"no authorised client keys in {self.authorized}; run `sensorium keys generate`")
        self._ctx = ctx or zmq.Context.instance()
        self._auth = None

    def start(self) -> CurveServer:
        from zmq.auth.thread import ThreadAuthenticator

        if self._auth is None:
            self._auth = ThreadAuthenticator(self._ctx)
            self._auth.start()
            self._auth.configure_curve_callback(domain="*", credentials_provider=Authorized(self.authorized))
        return self

    def apply(self, sock: zmq.Socket) -> None:
        """Make `sock` a CURVE server; call before bind."""
        sock.curve_server = True
        sock.curve_publickey, sock.curve_secretkey = self.public, self.secret

    def stop(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None


def check_bind(endpoint: str, curve: object | None, what: str) -> None:
    """Refuse to listen off-host in the clear."""
    if off_host(endpoint) and curve is None:
        raise KeysError(
            f"{what}: {endpoint} listens off-host; it binds only with CURVE keys "
            "(run `sensorium keys generate` and set curve = true)"
        )
