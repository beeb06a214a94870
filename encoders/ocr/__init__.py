"""Screen text (OCR): PP-OCRv6 on OpenVINO. `OcrEngine(runtime, model_dir).read(rgb, regions)` → TextLines."""

from .engine import OcrEngine, OcrModelError, reading_order

__all__ = ["OcrEngine", "OcrModelError", "reading_order"]
