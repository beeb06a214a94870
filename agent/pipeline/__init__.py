"""Frames between capture and the sinks: change gate, per-source mailboxes, one dispatcher per model."""
