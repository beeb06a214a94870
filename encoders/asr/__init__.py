"""Speech transcripts (ASR): Whisper on OpenVINO. `Whisper(runtime, model_dir).transcribe(audio)` → Transcript."""

from ..records import Transcript
from .engine import AsrModelError, Whisper

__all__ = ["AsrModelError", "Transcript", "Whisper"]
