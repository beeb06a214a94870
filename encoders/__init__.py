"""Frames to vectors on OpenVINO. Imports nothing of ours; never imports torch at runtime."""
