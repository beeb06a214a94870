"""Derived senses that produce words: screen text (imagetext.py) here, speech in agent/speech.

Shared by them (speech uses redact.py and memories.py): which parts of a screen changed (changes.py), lines into blocks and what is new
(blocks.py), secrets out (redact.py), and words into text memories in the query text space (memories.py).
"""
