"""Watches: standing queries compared with every new embedding; a match is published as `match.<NAME>`."""

from agent.watch.matcher import Watches
from agent.watch.spec import MAX_WATCHES, Watch, WatchError

__all__ = ["MAX_WATCHES", "Watch", "WatchError", "Watches"]
