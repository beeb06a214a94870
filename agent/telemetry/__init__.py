"""What the daemon tells about itself: logfmt logs, rates and histograms, the sys.status heartbeat, Prometheus."""
