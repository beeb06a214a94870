"""Which transcripts are kept: Whisper's silence and repetition rules, loops trimmed or dropped, hallucinated
sign-offs on near-silence. Transcripts are given (their numbers as Whisper reports them), not decoded."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from agent.speech.gates import Thresholds, compression_ratio, judge, trailing_loop


@dataclass(frozen=True)
class Said:
    text: str
    avg_logprob: float = -0.3
    no_speech_prob: float = 0.02
    audio_s: float = 4.0


def test_a_plain_transcript_is_kept_with_its_spaces_tidied() -> None:
    v = judge(Said("  The budget meeting moved to  Thursday. "))
    assert (v.text, v.reason, v.trimmed) == ("The budget meeting moved to Thursday.", None, 0)


@pytest.mark.parametrize("text", ["", "   ", " . ", "…", "-- !"])
def test_nothing_but_punctuation_is_empty(text: str) -> None:
    assert judge(Said(text)).reason == "empty"


def test_no_speech_needs_both_a_high_no_speech_probability_and_a_low_logprob() -> None:
    assert judge(Said("We should go.", avg_logprob=-1.2, no_speech_prob=0.7)).reason == "no_speech"
    assert judge(Said("We should go.", avg_logprob=-0.4, no_speech_prob=0.7)).reason is None  # confident words
    assert judge(Said("We should go.", avg_logprob=-1.2, no_speech_prob=0.3)).reason is None
    assert judge(Said("We should go.", avg_logprob=-1.6, no_speech_prob=0.0)).reason == "low_logprob"
    lenient = Thresholds(min_logprob=-2.0)
    assert judge(Said("We should go.", avg_logprob=-1.6), lenient).reason is None


def test_a_trailing_loop_is_trimmed_to_one_copy() -> None:
    said = "I think we should meet at noon. See you then. See you then. See you then. See you then."
    v = judge(Said(said))
    assert v.reason is None and v.text == "I think we should meet at noon. See you then." and v.trimmed == 9
    # the comparison ignores case and punctuation, the kept copy is the first one
    v = judge(Said("Okay so the plan is fine, right right, Right. right, RIGHT right"))
    assert v.text == "Okay so the plan is fine, right" and v.trimmed == 5


@pytest.mark.parametrize(
    "text", ["Thank you. Thank you. Thank you.", "the the the the the the the", "a b c a b c a b c a b c"]
)
def test_a_transcript_that_is_all_loop_is_dropped(text: str) -> None:
    assert judge(Said(text)).reason == "loop"


@pytest.mark.parametrize(
    "text",
    ["No, no, no, I said Tuesday.", "It was very very very good.", "Bye bye.", "one two three one two three"],
)
def test_ordinary_repetition_is_not_a_loop(text: str) -> None:
    assert trailing_loop(text.split()) == (0, 0)
    assert judge(Said(text)).reason is None


def test_repetition_without_spaces_fails_on_compression() -> None:
    said = "ha" * 60
    assert compression_ratio(said) > 2.4 and compression_ratio("The budget meeting moved to Thursday.") < 1.5
    assert judge(Said(said)).reason == "compression"
    assert judge(Said("ha " * 3 + "that was funny")).reason is None


def test_sign_offs_on_short_quiet_clips_are_hallucinations() -> None:
    assert judge(Said("Thank you.", audio_s=1.4, no_speech_prob=0.35)).reason == "hallucination"
    assert judge(Said("Thanks for watching!", audio_s=2.0, no_speech_prob=0.25)).reason == "hallucination"
    assert judge(Said("Vielen Dank.", audio_s=1.0, no_speech_prob=0.4)).reason == "hallucination"
    # said clearly (low no-speech probability), or as part of a longer clip: kept
    assert judge(Said("Thank you.", audio_s=1.4, no_speech_prob=0.02)).reason is None
    assert judge(Said("Thank you.", audio_s=6.0, no_speech_prob=0.35)).reason is None
    assert judge(Said("Thank you for the report, Maria.", audio_s=1.4, no_speech_prob=0.35)).reason is None
    # subtitle credits are never speech
    assert judge(Said("Subtitles by the Amara.org community", no_speech_prob=0.0)).reason == "hallucination"
    assert judge(Said("Untertitel im Auftrag des ZDF, 2017", no_speech_prob=0.0)).reason == "hallucination"
