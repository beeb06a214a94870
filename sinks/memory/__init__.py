"""Memory: the Chroma store in time buckets, its writer, spool, retention and store process."""

from sinks.memory.rows import Hit
from sinks.memory.writer import Memory

__all__ = ["Hit", "Memory"]
