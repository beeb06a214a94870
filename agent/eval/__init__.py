"""`sensorium eval`: question sets with ground truth (questions), scoring (score) and a runner against a daemon (run).

The built-in scenario that plays on the virtual sensors lives in bench/eval.py (agent never imports bench)."""
