"""Change gate: skip frames that barely differ from the last kept one, keep one every N s anyway.

Works on a 32×32 grey thumbnail, so it costs about 0.1 ms even for a 4K screen and runs on
the capture thread before colour conversion; a skipped frame costs no inference.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB = (32, 32)


def signature(bgr_or_bgra: np.ndarray) -> np.ndarray:
    """Tiny grey image that stands for the frame when comparing.

    Every k-th pixel is sampled before area-averaging (a strided view, no copy): INTER_AREA over a whole
    1080p BGRA frame to 32×32 costs ~8 ms, on the strided view ~0.1 ms. The gate only compares signatures
    made the same way, so the aliasing does not matter."""
    k = max(1, min(bgr_or_bgra.shape[0], bgr_or_bgra.shape[1]) // (4 * THUMB[0]))
    small = cv2.resize(bgr_or_bgra[::k, ::k], THUMB, interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if small.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        small = cv2.cvtColor(small, code)
    return small.astype(np.float32)


class ChangeGate:
    def __init__(self, threshold: float, force_keep_s: float) -> None:
        self.threshold = threshold
        self.force_keep_ns = int(force_keep_s * 1e9)
        self._last: np.ndarray | None = None
        self._last_kept_ns = 0
        self.kept = 0
        self.skipped = 0
        self.forced = 0

    def keep(self, image: np.ndarray, mono_ns: int) -> bool:
        """Decide for one frame; call from the capture thread only."""
        sig = signature(image)
        due = mono_ns - self._last_kept_ns >= self.force_keep_ns
        changed = self._last is None or float(np.mean(np.abs(sig - self._last))) >= self.threshold
        if not (changed or due):
            self.skipped += 1
            return False
        if not changed:
            self.forced += 1
        self._last, self._last_kept_ns = sig, mono_ns
        self.kept += 1
        return True
