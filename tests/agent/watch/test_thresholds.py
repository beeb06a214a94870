"""The default watch thresholds (agent/watch/spec.py) against the built models: right answers above, wrong
ones below. `-s` prints the score table the defaults were chosen from."""

from __future__ import annotations

import numpy as np

from agent.watch.spec import CONSE_THRESHOLD, IMAGE_THRESHOLD, TEXT_THRESHOLD
from tests.support.photos import rgb

PHOTOS = (
    "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "colorwheel", "grass", "gravel", "horse",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text",
)  # fmt: skip
QUERIES = (
    "a cat", "a person", "a coffee cup", "a rocket", "a horse", "a dog", "a car", "text on a page",
    "a person at the door", "the moon",
)  # fmt: skip
IMAGE_RIGHT = {("a cat", "chelsea"), ("a coffee cup", "coffee")}  # what effnet-lite0's labels can name
DOCS = (
    "My cat Felix sleeps on the sofa all afternoon", "Invoice 4711: total due 120 EUR by Friday",
    "Meeting notes: quarterly roadmap review", "The rocket launch was postponed because of weather",
    "Recipe: espresso with steamed milk", "Someone is standing at the front door",
)  # fmt: skip
TEXT_RIGHT = {("a cat", 0), ("a rocket", 3), ("a coffee cup", 4), ("a person", 5), ("a person at the door", 5)}


def test_conse_threshold_separates_named_objects(text_encoder, image_encoder) -> None:
    space = text_encoder.space
    conse = {n: next(e.vector for e in image_encoder.encode_now(rgb(n)) if e.space == space) for n in PHOTOS}
    right, wrong = [], []
    print(f"\n{'':<22}" + " ".join(f"{n[:7]:>7}" for n in PHOTOS))
    for q in QUERIES:
        v = text_encoder.encode(q)
        scores = {n: float(v @ conse[n]) for n in PHOTOS}
        print(f"{q:<22}" + " ".join(f"{s:7.3f}" for s in scores.values()))
        for n, s in scores.items():
            (right if (q, n) in IMAGE_RIGHT else wrong).append(s)
    print(f"right {sorted(right)}; wrong: max {max(wrong):.3f}, p95 {np.percentile(wrong, 95):.3f}")
    assert min(right) >= CONSE_THRESHOLD > max(wrong)


def test_text_threshold_separates_text_memories(text_encoder) -> None:
    docs = [text_encoder.encode(d) for d in DOCS]
    right, wrong = [], []
    for q in QUERIES:
        v = text_encoder.encode(q)
        for i, d in enumerate(docs):
            (right if (q, i) in TEXT_RIGHT else wrong).append(float(v @ d))
    print(f"\ntext: right {sorted(round(r, 3) for r in right)}; wrong max {max(wrong):.3f}")
    assert min(right) >= TEXT_THRESHOLD > max(wrong)


def seen_again(a: np.ndarray) -> np.ndarray:
    """The photo as a camera or screen grab would give it back: cropped, rescaled, brighter, JPEG'd."""
    import cv2

    h, w = a.shape[:2]
    crop = a[h // 12 : h - h // 12, w // 12 : w - w // 12]
    small = cv2.resize(crop, (int(crop.shape[1] * 0.7), int(crop.shape[0] * 0.7)), interpolation=cv2.INTER_AREA)
    bright = np.clip(small.astype(np.int16) + 20, 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", bright, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    return cv2.imdecode(jpg, cv2.IMREAD_UNCHANGED)


def test_image_threshold_separates_the_same_photo_from_others(text_encoder, image_encoder) -> None:
    """An image watch's probe (the watched photo's image-model vector) against photos seen again and other photos;
    its ConSE vector (text space) does not separate them (a wrong pair scored 0.85), so image watches leave it out."""
    vecs = {n: {e.space: e.vector for e in image_encoder.encode_now(rgb(n))} for n in PHOTOS}
    again = {n: {e.space: e.vector for e in image_encoder.encode_now(seen_again(rgb(n)))} for n in PHOTOS}
    for space in [s for s in vecs[PHOTOS[0]] if s != text_encoder.space]:
        right = [float(vecs[n][space] @ again[n][space]) for n in PHOTOS]
        wrong = [float(vecs[a][space] @ again[b][space]) for a in PHOTOS for b in PHOTOS if a != b]
        print(f"\n{space}: right min {min(right):.3f} p5 {np.percentile(right, 5):.3f}; wrong max {max(wrong):.3f}")
        assert np.percentile(right, 10) >= IMAGE_THRESHOLD > max(wrong)
