"""The OCR engine on real rendered text: PP-OCRv6 det + rec built from the rapidocr wheel, on OpenVINO's CPU.

Text is drawn here with PIL and DejaVu fonts (14–24 px, dark on light and light on dark); what is read must
equal what was drawn up to one edit per line, come out in reading order, and stay inside the regions asked
for. Bad frames and broken model folders give clear errors; building and reading open no outbound socket.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from bench.cer import distance as edits
from encoders.base import BadFrame
from encoders.modelstore import ModelStore
from encoders.ocr import OcrEngine, OcrModelError
from encoders.runtime import Runtime, RuntimeConfig
from tests.support.env import ROOT

FONTS = Path("/usr/share/fonts/truetype/dejavu")
DARK_ON_LIGHT = ((250, 250, 250), (25, 25, 25))
LIGHT_ON_DARK = ((30, 32, 36), (225, 225, 225))


def render(size: tuple[int, int], items: list[tuple[int, int, str, int, str]], theme=DARK_ON_LIGHT) -> np.ndarray:
    """RGB image with each (x, y, text, px, font file) drawn."""
    bg, fg = theme
    img = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(img)
    for x, y, text, px, font in items:
        draw.text((x, y), text, font=ImageFont.truetype(str(FONTS / font), px), fill=fg)
    return np.asarray(img).copy()


@pytest.fixture(scope="module")
def model_dir(model_cache: Path) -> Path:
    if not (FONTS / "DejaVuSans.ttf").is_file():
        pytest.fail(f"DejaVu fonts missing in {FONTS} (apt-get install fonts-dejavu-core)")
    return ModelStore(model_cache).build("ppocr-v6")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    return Runtime(RuntimeConfig("CPU", "LATENCY", 0, False, tmp_path_factory.mktemp("ov-cache")))


@pytest.fixture(scope="module")
def engine(runtime: Runtime, model_dir: Path) -> OcrEngine:
    return OcrEngine(runtime, model_dir, static=False)


LINES = [
    (14, "DejaVuSans.ttf", "Invoice #4711 from Müller GmbH"),
    (16, "DejaVuSansMono.ttf", "ERROR: certificate verify failed"),
    (18, "DejaVuSerif.ttf", "The slide with the Q3 numbers"),
    (20, "DejaVuSans.ttf", "Total amount due: 1,234.56 EUR"),
    (24, "DejaVuSans-Bold.ttf", "Meeting notes 2026-12-03"),
]


@pytest.mark.parametrize("theme", [DARK_ON_LIGHT, LIGHT_ON_DARK], ids=["dark-on-light", "light-on-dark"])
def test_reads_rendered_lines_in_order(engine: OcrEngine, theme) -> None:
    items = [(40, 30 + 50 * i, text, px, font) for i, (px, font, text) in enumerate(LINES)]
    lines = engine.read(render((800, 300), items, theme))
    assert [edits(t.text, want) <= 1 for t, (_, _, want) in zip(lines, LINES, strict=True)] == [True] * len(LINES), [
        t.text for t in lines
    ]
    for t, (x, y, _, px, _) in zip(lines, items, strict=True):
        bx, by, bw, bh = t.box
        assert bx <= x + 4 and by <= y + px // 2 < by + bh and bw > 5 * px and 0.5 < t.score <= 1.0


def test_a_line_wider_than_the_widest_bucket_is_read_in_pieces(engine: OcrEngine) -> None:
    text = "The quarterly report shows invoice 4711 was paid on time, the certificate error is fixed, and " * 2
    text = text.strip()
    img = render((1900, 60), [(10, 20, text, 14, "DejaVuSans.ttf")])
    before = engine.stats["boxes"]
    lines = engine.read(img)
    assert engine.stats["boxes"] - before == 1  # one box, ≈ 3800 columns at height 48: three pieces
    assert len(lines) == 1 and edits(lines[0].text, text) <= 1, lines


def test_two_columns_are_read_row_by_row(engine: OcrEngine) -> None:
    left = ["alpha report draft", "second left line", "third left entry"]
    right = ["budget overview", "quarterly numbers", "closing remarks"]
    items = [(30, 40 + 40 * i, t, 18, "DejaVuSans.ttf") for i, t in enumerate(left)]
    items += [(520, 42 + 40 * i, t, 18, "DejaVuSerif.ttf") for i, t in enumerate(right)]  # 2 px lower: same rows
    lines = engine.read(render((900, 200), items))
    want = [t for pair in zip(left, right, strict=True) for t in pair]
    assert len(lines) == len(want), [t.text for t in lines]
    assert all(edits(t.text, w) <= 1 for t, w in zip(lines, want, strict=True)), [t.text for t in lines]


def test_regions_restrict_detection(engine: OcrEngine) -> None:
    items = [
        (40, 40, "top left words", 18, "DejaVuSans.ttf"),
        (700, 40, "top right words", 18, "DejaVuSans.ttf"),
        (40, 600, "bottom line here", 18, "DejaVuSans.ttf"),
    ]
    img = render((1280, 720), items)
    whole = [t.text for t in engine.read(img)]
    assert len(whole) == 3, whole
    top = engine.read(img, [(0, 20, 400, 60)])
    assert [t.text for t in top] == [whole[0]]
    assert 0 <= top[0].box[0] < 60 and 20 <= top[0].box[1] < 60  # frame pixels, not canvas pixels
    # two small regions far apart are packed onto one canvas and both read, in reading order
    two = engine.read(img, [(600, 600 - 580, 400, 60), (0, 580, 400, 60)])
    assert [t.text for t in two] == [whole[1], whole[2]]
    # a diff's many small cells over the top-left line merge into one region
    cells = [(x, y, 8, 8) for x in range(0, 400, 8) for y in range(24, 80, 8)]
    assert [t.text for t in engine.read(img, cells)] == [whole[0]]
    assert engine.read(img, []) == []
    assert engine.read(img, [(5000, 5000, 10, 10), (10, 10, -5, 20)]) == []  # outside the frame / empty


def test_same_lines_are_not_recognised_twice(engine: OcrEngine) -> None:
    img = render((600, 120), [(20, 30, "cached line of text", 18, "DejaVuSans.ttf")])
    first = engine.read(img)
    before = dict(engine.stats)
    again = engine.read(img)
    assert again == first and len(first) == 1
    assert engine.stats["boxes_cached"] - before["boxes_cached"] == engine.stats["boxes"] - before["boxes"] == 1


def test_scrolled_lines_are_not_recognised_again(engine: OcrEngine) -> None:
    items = [(30, 40 + 36 * i, text, px, font) for i, (px, font, text) in enumerate(LINES[:4])]
    img = render((900, 300), items, LIGHT_ON_DARK)
    first = engine.read(img)
    scrolled = np.full_like(img, img[0, 0])
    scrolled[:-23] = img[23:]  # everything 23 px up, as a scroll does
    before = dict(engine.stats)
    again = engine.read(scrolled, [(0, 0, 900, 300)])
    assert [t.text for t in again] == [t.text for t in first]
    assert [t.box[1] for t in again] == pytest.approx([t.box[1] - 23 for t in first], abs=3)
    assert engine.stats["boxes_cached"] - before["boxes_cached"] == len(first)


def test_bad_frames(engine: OcrEngine) -> None:
    assert engine.read(np.zeros((720, 1280, 3), np.uint8)) == []
    bad = engine.stats["bad_frames"]
    for frame in (np.zeros((1, 1920, 3), np.uint8), np.zeros((1080, 1, 3), np.uint8)):
        with pytest.raises(BadFrame, match="too small"):
            engine.read(frame)
    with pytest.raises(BadFrame, match="uint8"):
        engine.read(np.zeros((100, 100, 3), np.float32))
    with pytest.raises(BadFrame, match="HxWx3"):
        engine.read(np.zeros((100, 100), np.uint8))
    assert engine.stats["bad_frames"] == bad + 4
    wide = np.full((200, 16000, 3), 255, np.uint8)
    wide[:, 8000:] = 0
    assert isinstance(engine.read(wide), list)  # scaled to the canvas: no error, bounded memory


def test_static_shapes_read_the_same(runtime: Runtime, model_dir: Path, engine: OcrEngine) -> None:
    """The NPU path (fixed canvas, width buckets, padded batches) on the CPU gives the same lines."""
    static = OcrEngine(runtime, model_dir, static=True)
    items = [(40, 30 + 50 * i, text, px, font) for i, (px, font, text) in enumerate(LINES)]
    img = render((800, 300), items)
    assert [t.text for t in static.read(img)] == [t.text for t in engine.read(img)]


@pytest.fixture
def broken(model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "ppocr"
    shutil.copytree(model_dir, folder)
    return folder


def test_missing_model_file_is_named(runtime: Runtime, broken: Path) -> None:
    (broken / "rec.bin").unlink()
    with pytest.raises(OcrModelError, match=r"missing: .*rec\.bin"):
        OcrEngine(runtime, broken)


def test_corrupt_model_file_is_named(runtime: Runtime, broken: Path) -> None:
    (broken / "det.xml").write_text("<net><layers>truncated")
    with pytest.raises(OcrModelError, match=r"det\.xml"):
        OcrEngine(runtime, broken)


def test_truncated_weights_are_named(runtime: Runtime, broken: Path) -> None:
    with (broken / "rec.bin").open("r+b") as f:
        f.truncate(1_000_000)
    with pytest.raises(OcrModelError, match=r"rec\.xml \(or its \.bin\): .*weights"):
        OcrEngine(runtime, broken)


def test_corrupt_meta_is_named(runtime: Runtime, broken: Path) -> None:
    (broken / "meta.json").write_text('{"kind": "ocr"')
    with pytest.raises(OcrModelError, match=r"meta\.json"):
        OcrEngine(runtime, broken)


GUARD = """
import json, socket, sys
from pathlib import Path
outbound = []
real = socket.socket.connect
def connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
        outbound.append(repr(address))
        raise OSError("outbound connection blocked by the test")
    return real(self, address)
socket.socket.connect = connect
socket.socket.connect_ex = lambda self, address: connect(self, address) or 0
import numpy as np
from encoders.modelstore import ModelStore
from encoders.ocr import OcrEngine
from encoders.runtime import Runtime, RuntimeConfig
root = Path(sys.argv[1])
folder = ModelStore(root).build("ppocr-v6")
engine = OcrEngine(Runtime(RuntimeConfig("CPU", "LATENCY", 1, False, root / "ov")), folder)
img = np.full((64, 320, 3), 255, np.uint8)
img[20:40, 20:300] = 0
engine.read(img)
print(json.dumps({"outbound": outbound, "rapidocr_imported": any(m.startswith("rapidocr") for m in sys.modules)}))
"""


def test_build_and_read_open_no_outbound_connection(tmp_path: Path) -> None:
    """A fresh build and a read, in a process whose sockets refuse anything but loopback, and rapidocr unimported."""
    import json

    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(GUARD), str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"outbound": [], "rapidocr_imported": False}
    assert (next((tmp_path / "models").glob("ppocr-v6-*")) / "MODEL_LICENSES.md").is_file()
