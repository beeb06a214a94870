"""The query tests' shared World (world.py): one Service over the stored pictures for the whole package."""

from __future__ import annotations

import pytest

from tests.agent.query.world import World


@pytest.fixture(scope="package")
def world(tmp_path_factory, model_cache):
    w = World(tmp_path_factory.mktemp("query"), model_cache)
    yield w
    w.service.close()
