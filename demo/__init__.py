"""`make demo` and the virtual sensors (Xvfb, PulseAudio, MJPEG camera) it shares with tests and benchmarks.

Outside the daemon's packages: nothing the daemon imports imports this."""
