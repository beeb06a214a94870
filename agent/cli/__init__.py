"""`sensorium` command line: the daemon's commands, the bus and query tools, models, systemd unit, bench."""

from agent.cli.main import main, parser

__all__ = ["main", "parser"]
