"""Speech transcripts, a derived sense of the microphone: utterances from the VAD the audio encoder already runs
(segment.py), transcribed off the audio path and kept out of memory when they are silence, garbage, loops or
known hallucinations (gates.py), stored as text memories like screen text (worker.py)."""
