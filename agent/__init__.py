"""The sensorium daemon: config, sources, gate, dispatcher, query service, CLI."""
