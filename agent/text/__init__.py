"""Derived senses that produce words: screen text (imagetext.py) here, speech in agent/speech.

Here: which parts of a screen changed (changes.py), lines into blocks and what is new (blocks.py); shared with
speech: secrets out (redact.py), and words into text memories in the query text space (memories.py).
"""
