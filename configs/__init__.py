"""The shipped defaults (`default.toml`): a package so that the file travels in the wheel as package data.

Read with importlib.resources (agent.config), never by a path relative to the source tree: an installed
sensorium has no source tree.
"""
