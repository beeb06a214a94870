"""CURVE on the bus and the query endpoint, on 127.0.0.1 with CURVE forced on: the right keys get
messages and answers; no keys, a wrong server key or an unauthorised client key get nothing; a key put in
authorized/ is let in (and one removed is shut out) without a restart.

Each test has its own ZMQ context: ZAP (the authenticator) is per context.
"""

from __future__ import annotations

import os
import shutil
import stat

import pytest
import zmq
import zmq.auth

from agent.query.service import Service
from sinks.bus.keys import CurveServer, KeysError, generate
from sinks.bus.publisher import Publisher
from sinks.client import ClientKeys, QueryError, Subscriber, request
from sinks.memory import Memory
from tests.support.env import sensorium
from tests.support.net import free_port

PROBES = 20  # messages published while waiting for a subscriber (50 ms apart)


class Secured:
    """A Publisher and a Service on 127.0.0.1 with CURVE, sharing one authenticator."""

    def __init__(self, tmp_path) -> None:
        self.keys = tmp_path / "keys"
        generate(self.keys)
        self.ctx = zmq.Context()
        self.curve = CurveServer(self.keys, self.ctx).start()
        self.bus = f"tcp://127.0.0.1:{free_port()}"
        self.query = f"tcp://127.0.0.1:{free_port()}"
        self.pub = Publisher(self.bus, 1000, 100, ctx=self.ctx, curve=self.curve)
        self.pub.start()
        self.memory = Memory(tmp_path / "data", 8, 0.1, False, 32, 10)
        self.service = Service(self.query, self.memory, [], lambda: {"up": True}, ctx=self.ctx, curve=self.curve)
        self.service.start()

    def heard(self, keys: ClientKeys | None) -> int:
        """How many of PROBES published messages a subscriber with `keys` receives."""
        sub = Subscriber(self.bus, "sys.", keys=keys)
        got = 0
        for _ in range(PROBES):
            self.pub.publish_sys("sys.probe", {})
            if sub.recv(timeout=0.05) is not None:
                got += 1
        sub.close()
        return got

    def close(self) -> None:
        self.service.close()
        self.pub.close()
        self.curve.stop()
        self.ctx.term()


@pytest.fixture
def secured(tmp_path):
    s = Secured(tmp_path)
    yield s
    s.close()


def test_keys_generate_writes_a_private_dir_and_refuses_to_overwrite(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[daemon]\ndata_dir = "{tmp_path / "data"}"\n')
    out = sensorium("--config", str(cfg), "keys", "generate")
    keys = tmp_path / "data" / "keys"
    assert str(keys) in out.stdout
    assert stat.S_IMODE(os.stat(keys).st_mode) == stat.S_IMODE(os.stat(keys.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(keys / "server.key_secret").st_mode) == 0o600
    public, secret = zmq.auth.load_certificate(keys / "client.key_secret")
    assert zmq.auth.load_certificate(keys / "authorized" / "client.key") == (public, None) and secret
    again = sensorium("--config", str(cfg), "keys", "generate", check=False)
    assert again.returncode == 1 and "already has keys" in again.stderr
    assert zmq.auth.load_certificate(keys / "client.key_secret")[0] == public  # untouched
    sensorium("--config", str(cfg), "keys", "generate", "--force")
    assert zmq.auth.load_certificate(keys / "client.key_secret")[0] != public


def test_the_right_keys_get_messages_and_answers(secured):
    keys = ClientKeys.load(secured.keys)
    assert secured.heard(keys) > 0
    assert request(secured.query, {"op": "status"}, timeout=5, keys=keys)["status"] == {"up": True}


def test_no_keys_a_wrong_server_key_or_an_unknown_client_get_nothing(secured, tmp_path):
    right = ClientKeys.load(secured.keys)
    other_public, other_secret = zmq.curve_keypair()
    wrong_server = ClientKeys(right.public, right.secret, other_public)
    stranger = ClientKeys(other_public, other_secret, right.server)  # valid pair, not in authorized/
    for keys in (None, wrong_server, stranger):
        assert secured.heard(keys) == 0, keys
        with pytest.raises(QueryError, match="no answer"):
            request(secured.query, {"op": "ping"}, timeout=0.5, keys=keys)
    assert secured.heard(right) > 0  # and the daemon still serves the right client afterwards


def test_a_key_put_in_authorized_lets_that_client_in_and_removing_it_shuts_it_out(secured, tmp_path):
    """A second machine's keypair, made as `sensorium keys generate` says; the daemon keeps running throughout."""
    (tmp_path / "laptop2").mkdir()
    public, secret = zmq.auth.create_certificates(tmp_path / "laptop2", "laptop2")
    laptop2 = ClientKeys(*zmq.auth.load_certificate(secret), ClientKeys.load(secured.keys).server)
    assert secured.heard(laptop2) == 0
    with pytest.raises(QueryError, match="no answer"):
        request(secured.query, {"op": "ping"}, timeout=0.5, keys=laptop2)

    shutil.copy(public, secured.keys / "authorized" / "laptop2.key")
    assert secured.heard(laptop2) > 0
    assert request(secured.query, {"op": "ping"}, timeout=5, keys=laptop2) == {"ok": True}

    (secured.keys / "authorized" / "laptop2.key").unlink()  # new connections are refused again
    assert secured.heard(laptop2) == 0
    with pytest.raises(QueryError, match="no answer"):
        request(secured.query, {"op": "ping"}, timeout=0.5, keys=laptop2)
    assert secured.heard(ClientKeys.load(secured.keys)) > 0  # the daemon's own client key is still in


def test_off_host_endpoints_bind_only_with_curve(tmp_path):
    port = free_port()
    pub = Publisher(f"tcp://0.0.0.0:{port}", 10, 10, ctx=zmq.Context.instance())
    with pytest.raises(KeysError, match="off-host"):
        pub.start()
    memory = Memory(tmp_path / "data", 8, 0.1, False, 32, 10)
    service = Service(f"tcp://0.0.0.0:{port}", memory, [], lambda: {})
    with pytest.raises(KeysError, match="off-host"):
        service.start()
    with pytest.raises(KeysError, match="sensorium keys generate"):
        CurveServer(tmp_path / "no-keys")


def test_config_allows_an_off_host_endpoint_only_with_curve(tmp_path):
    from agent import config

    path = tmp_path / "cfg.toml"
    path.write_text("[bus]\nendpoint = 'tcp://0.0.0.0:5555'\n")
    with pytest.raises(config.ConfigError, match=r"bus\.curve = true"):
        config.load(path)
    path.write_text("[bus]\nendpoint = 'tcp://0.0.0.0:5555'\ncurve = true\n[query]\ncurve = true\n")
    cfg = config.load(path)
    assert cfg.bus.curve and cfg.query.curve and cfg.daemon.keys_dir == cfg.daemon.data_dir / "keys"
