"""Derived senses that produce words: screen text now (imagetext.py), speech next.

Shared by them: which parts of a screen changed (changes.py), lines into blocks and what is new
(blocks.py), secrets out (redact.py), and words into text memories in the query text space (memories.py).
"""
