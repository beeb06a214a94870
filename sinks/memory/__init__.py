"""Memory: the Chroma store in time buckets, its writer, spool, retention and store process.

`Memory` and `Hit` are looked up lazily: the store process (`python -m sinks.memory.storeproc`) imports
this package first and must not pay for (or import twice) the writer's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sinks.memory.rows import Hit
    from sinks.memory.writer import Memory

__all__ = ["Hit", "Memory"]


def __getattr__(name: str) -> Any:
    if name == "Memory":
        from sinks.memory.writer import Memory

        return Memory
    if name == "Hit":
        from sinks.memory.rows import Hit

        return Hit
    raise AttributeError(f"module 'sinks.memory' has no attribute {name!r}")
