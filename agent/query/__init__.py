"""The query and control endpoint: search over memory and control of the sources, for other processes."""
