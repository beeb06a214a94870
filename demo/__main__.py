"""`make demo`: sensorium end to end on a machine without sensors, in about a minute.

A virtual screen (Xvfb) shows a slideshow of photos that ship with scikit-image and pages of text (an
invoice, a terminal, a spreadsheet: demo/textpages.py), a virtual camera (MJPEG on
127.0.0.1) shows a cup of coffee, and a private PulseAudio null sink plays two spoken sentences (espeak-ng), a
tone and noise into the "microphone". The real daemon runs on them for `--seconds` with a live `sensorium tail`,
then a few text queries show what it remembered: what it saw, heard, read on the screen, and the transcripts of
what was said (found by their words, with the time they were said); last, the web page's link and a screenshot
of it. Every process started here is stopped at the end, also on Ctrl-C, SIGTERM or an error. Data lives in a
temporary SENSORIUM_HOME; models come from the normal cache, so a `make run` build is reused (and missing models
are built once into it).

    python -m demo [--seconds 30] [--clean] [--stay]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from agent import config
from demo.standins import Display, MissingTool, MjpegServer, Pulse, noise, stop_process, tone, which, write_wav

SLIDES = (
    "invoice",
    "chelsea",
    "coffee",
    "terminal",
    "rocket",
    "spreadsheet",
)  # photos and pages of text; the cat comes after the watch is added
CAMERA = "coffee"  # a webcam looking at a desk
# what it saw, heard, and read on the screen (by the words, and by the meaning: no word in common)
QUERIES = ("a cat", "someone talking", "a cup of coffee", "invoice 4711", "the TLS cert ran out of validity")
SCREEN = (1280, 720)
# what is said into the microphone: (espeak-ng voice, words per minute, sentence, a query that finds its transcript)
SAID = (
    ("en-us", 160, "The budget meeting moved to Thursday afternoon.", "budget meeting"),
    ("en+f3", 140, "Please send the slides to Maria before lunch.", "slides for Maria"),
)
WATCH = ("cat", "a cat")  # a standing query: match.cat on the bus when the cat is on screen
MOMENT = "a cat while someone talks about a meeting"  # across senses: only a moment (a slice of time) holds both
TOOLS = ("Xvfb", "feh", "pulseaudio", "pactl", "paplay", "espeak-ng")
CONFIG = """\
# Written by `python -m demo`: every sensor is a stand-in.
[daemon]
log_level = "WARNING"
[screen]
fps = 2.0
force_keep_s = 5.0
[camera]
device = "{camera}"
fps = 1.0
force_keep_s = 5.0
[store]
flush_s = 0.5
[moments]
# the demo's sentences are short: a slice can close soon after it ends (the default waits for 30 s utterances)
grace_s = 5.0
[metrics]
port = 0
[web]
# any free port: the link `sensorium status` prints says which
port = 0
"""
Clips = list[tuple[str, Path]]  # (what it is, WAV file)
TAIL_EVERY_S = 5.0  # a topic whose labels did not change is shown again after this long


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and what to do."""


def say(text: str = "") -> None:
    print(text, flush=True)


def photos() -> dict[str, np.ndarray]:
    """The slideshow (photos and rendered pages) and the camera's photo, RGB; scikit-image ships the photos
    in its wheel, so no download."""
    try:
        import skimage.data
    except ImportError:
        raise DemoError(
            "the demo needs scikit-image for its photos: pip install -e '.[demo]' (make demo does)"
        ) from None
    from demo.textpages import PAGES, page

    out = {name: page(name, SCREEN).rgb for name in SLIDES if name in PAGES}
    return out | {name: getattr(skimage.data, name)() for name in {*SLIDES, CAMERA} if name not in PAGES}


def sensorium(cfg_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI in its own process, as a user would run it."""
    cmd = [sys.executable, "-m", "agent", "--config", str(cfg_path), *args]
    return subprocess.run(cmd, text=True, capture_output=True, timeout=60)


def ensure_models(cfg_path: Path) -> None:
    """Build the configured models into the normal cache unless `make run` or an earlier demo did."""
    from encoders.modelstore import ModelStore

    cfg = config.load(cfg_path)
    store = ModelStore(cfg.daemon.cache_dir)
    names = (cfg.models.text, cfg.models.image, cfg.models.audio, cfg.models.ocr)
    names += (cfg.models.speech,) if cfg.speech.enabled else ()
    if all(store.is_built(n) for n in names):
        return
    say(f"building models into {cfg.daemon.cache_dir} (once; takes a minute or two)…")
    out = subprocess.run([sys.executable, "-m", "agent", "--config", str(cfg_path), "models", "build"], text=True)
    if out.returncode != 0:
        raise DemoError("building the models failed; `make models` installs what the build needs")


def start_daemon(cfg_path: Path, log: Path, stack: ExitStack) -> subprocess.Popen:
    """`sensorium run` in its own session (so it is stopped by us, in order); returns once it answers."""
    from sinks.client import QueryError, request

    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(cfg_path), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack.callback(stop_process, proc, 15.0)
    endpoint = config.query_endpoint(config.load(cfg_path))
    deadline = time.monotonic() + 120  # a first start compiles the models for this device
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"the daemon exited {proc.returncode}:\n{log.read_text()}")
        try:
            request(endpoint, {"op": "ping"}, timeout=0.5)
            return proc
        except QueryError:
            time.sleep(0.2)
    raise DemoError(f"the daemon did not answer within 120 s; its log:\n{log.read_text()}")


def wait_running(cfg_path: Path, timeout: float = 15.0) -> None:
    """Wait until every sensor captures, so the demo's seconds are spent on data; warn about laggards."""
    from sinks.client import request

    endpoint = config.query_endpoint(config.load(cfg_path))
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        sources = request(endpoint, {"op": "status"})["status"]["sources"]
        states = {name: s["state"] for name, s in sources.items()}
        if states and all(s == "running" for s in states.values()):
            return
        time.sleep(0.2)
    say(f"warning: not every sensor is running: {states}")


def show_tail(proc: subprocess.Popen, shown: list[int]) -> None:
    """Print `sensorium tail` lines, but only when a topic's labels change or every TAIL_EVERY_S.

    A line is `HH:MM:SS.mmm topic seq=N space labels`; every frame gives one per space, several a second.
    """
    last: dict[str, tuple[str, float]] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        shown[0] += 1
        parts = line.rstrip("\n").split(None, 4)
        if len(parts) < 4:
            continue
        topic, labels = parts[1], parts[4] if len(parts) > 4 else ""
        now = time.monotonic()
        prev = last.get(topic)
        if prev is None or prev[0] != labels or now - prev[1] >= TAIL_EVERY_S:
            last[topic] = (labels, now)
            shown[1] += 1
            say(f"  tail │ {line.rstrip()}")


def start_tail(
    cfg_path: Path, stack: ExitStack, prefix: str = "emb."
) -> tuple[subprocess.Popen, threading.Thread, list[int]]:
    """A live `sensorium tail` in its own process, the thread printing it, and [lines received, lines shown],
    filled as it runs."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "agent", "--config", str(cfg_path), "tail", prefix],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    stack.callback(stop_process, proc)
    counts = [0, 0]
    printer = threading.Thread(target=show_tail, args=(proc, counts), name="tail", daemon=True)
    printer.start()
    return proc, printer, counts


def play_loop(pulse: Pulse, clips: Clips, stop: threading.Event) -> None:
    """Play the clips in turn, with short silences between them, until `stop`; never leaves a paplay behind."""
    while not stop.is_set():
        for name, wav in clips:
            say(f"  sound: {name}")
            p = pulse.play(wav, wait=False)
            try:
                while p.poll() is None and not stop.is_set():
                    time.sleep(0.05)
            finally:
                stop_process(p)
            if stop.wait(0.6):
                return


def sounds(tmp: Path) -> Clips:
    """The sentences first (a short demo still hears both), then a tone and noise (which give no transcript)."""
    from demo.speech import RATE, speak

    said = [(f'speech: "{text}"', write_wav(tmp / f"said{i}.wav", speak(text, voice, wpm), RATE))
            for i, (voice, wpm, text, _) in enumerate(SAID)]  # fmt: skip
    tone_wav, noise_wav = write_wav(tmp / "tone.wav", tone(2.0), 48000), write_wav(tmp / "noise.wav", noise(2.0), 48000)
    return [*said, ("a 440 Hz tone", tone_wav), ("white noise", noise_wav)]


def scenario(display: Display, pulse: Pulse, images: dict[str, np.ndarray], clips: Clips, seconds: float) -> None:
    """The slideshow on the main thread, sounds on another, for `seconds`."""
    stop = threading.Event()
    player = threading.Thread(target=play_loop, args=(pulse, clips, stop), name="player", daemon=True)
    period = min(4.0, max(2.0, seconds / len(SLIDES)))
    start = time.monotonic()
    end = start + seconds
    player.start()
    try:
        i = 0
        while time.monotonic() < end:
            name = SLIDES[i % len(SLIDES)]
            if i:  # the first slide is already up
                say(f"  slide: {name}")
                display.show(images[name])  # returns once the slide is on screen
            i += 1
            time.sleep(max(0.0, min(start + i * period, end) - time.monotonic()))
    finally:
        stop.set()
        player.join(timeout=5)


def run_queries(cfg_path: Path) -> None:
    """Ask the running daemon, through the CLI, and print its answers (time, source, score, labels, thumbnail).
    A short run may not have shown (or read) every slide: "no memories match" is an answer then, and says why."""
    unanswered = []
    for text in QUERIES:
        say(f'\n$ sensorium query "{text}" -k 3')
        out = sensorium(cfg_path, "query", text, "-k", "3")
        if out.returncode != 0:
            raise DemoError(f"query {text!r} failed: {out.stderr.strip()}")
        for line in out.stdout.splitlines():
            say(f"  {line}")
        if "no memories match" in out.stdout:
            unanswered.append(text)
    if len(unanswered) == len(QUERIES):
        raise DemoError("nothing in memory answers any query; see the daemon log")


def wait_transcribed(cfg_path: Path, timeout: float = 30.0) -> None:
    """Wait until every utterance heard is transcribed (the last sentence ends as the sensors stop)."""
    from sinks.client import request

    endpoint = config.query_endpoint(config.load(cfg_path))
    time.sleep(1.5)  # an utterance still open is ended by the worker's timer
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sp = request(endpoint, {"op": "status"})["status"]["speech"]
        done = sp.get("transcribed", 0) + sp.get("dropped", 0) + sp.get("errors", 0) + sp.get("bad_audio", 0)
        if sp.get("state") != "on" or (not sp.get("waiting") and done >= sp.get("utterances", 0)):
            return
        time.sleep(0.3)
    say(f"warning: speech still transcribing after {timeout:g} s")


def show_speech(cfg_path: Path) -> None:
    """What was said: each sentence's transcript found by its words (with the time it was said), the transcripts as
    `sensorium tail` prints them, and the status line of the speech worker."""
    mic = config.load(cfg_path).microphone.name
    for *_, text in SAID:
        say(f'\n$ sensorium query "{text}" --modality text --source {mic} -k 1')
        out = sensorium(cfg_path, "query", text, "--modality", "text", "--source", mic, "-k", "1")
        if out.returncode != 0:
            raise DemoError(f"query {text!r} failed: {out.stderr.strip()}")
        for line in out.stdout.splitlines():
            say(f"  {line}")
        if "no memories match" in out.stdout:
            raise DemoError("no transcript of what was said; see the daemon log and `sensorium status`")
    say(f"\n$ sensorium tail emb.text.{mic} --since 10m -n {len(SAID)}")
    out = sensorium(cfg_path, "tail", f"emb.text.{mic}", "--since", "10m", "-n", str(len(SAID)), "--timeout", "5")
    for line in out.stdout.splitlines():
        say(f"  {line}")
    say("\n$ sensorium status   (its speech line)")
    status = sensorium(cfg_path, "status").stdout.splitlines()
    for line in status:
        if line.strip().startswith("speech"):
            say(f"  {line.strip()}")


def add_watch(cfg_path: Path) -> None:
    """A standing query: the daemon publishes match.cat whenever a frame matches "a cat"."""
    say(f'\n$ sensorium watch add {WATCH[0]} "{WATCH[1]}" --modality image')
    out = sensorium(cfg_path, "watch", "add", WATCH[0], WATCH[1], "--modality", "image")
    if out.returncode != 0:
        raise DemoError(f"watch add failed: {out.stderr.strip()}")
    for line in out.stdout.splitlines():
        say(f"  {line}")


def show_recall(cfg_path: Path) -> None:
    """Associative recall: what every sense captured while the first sentence was said, and the moments (one
    fused vector per 10 s of every sense) that best match a question no single memory answers."""
    import json

    mic, (*_, text) = config.load(cfg_path).microphone.name, SAID[0]
    hit = sensorium(cfg_path, "query", text, "--modality", "text", "--source", mic, "-k", "1", "--json")
    found = json.loads(hit.stdout) if hit.returncode == 0 else []
    if not found:
        raise DemoError(f"no transcript of {text!r} to look around; see the daemon log")
    say(f'\n$ sensorium around <the memory of "{text}"> --window 5s -k 2')
    out = sensorium(cfg_path, "around", found[0]["id"], "--window", "5s", "-k", "2")
    if out.returncode != 0:
        raise DemoError(f"around failed: {out.stderr.strip()}")
    for line in out.stdout.splitlines():
        say(f"  {line}")
    say(f'\n$ sensorium query "{MOMENT}" --modality moment -k 2')
    out = sensorium(cfg_path, "query", MOMENT, "--modality", "moment", "-k", "2")
    for line in (out.stdout or out.stderr).splitlines():
        say(f"  {line}")


def show_mcp(cfg_path: Path) -> None:
    """What an AI assistant sees: `sensorium mcp` started by the MCP client library, as an assistant starts it,
    its tools listed and one search made through it."""
    import asyncio
    import json

    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    async def converse() -> tuple[list[str], bool, str]:
        cmd = ["-m", "agent", "--config", str(cfg_path), "mcp"]
        params = StdioServerParameters(command=sys.executable, args=cmd, env=dict(os.environ))
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = [t.name for t in (await session.list_tools()).tools]
            result = await session.call_tool("search", {"query": "a cat", "k": 1})
            return tools, result.is_error, result.content[0].text

    say("\n$ sensorium mcp   (an MCP client on its stdin/stdout, as an AI assistant would run it)")
    tools, failed, text = asyncio.run(converse())  # errors are raised out here, not inside the client's task group
    say(f"  tools: {', '.join(tools)}")
    if failed:
        raise DemoError(f"the MCP search failed: {text}")
    for hit in json.loads(text)["results"]:
        say(f"  search('a cat') → {hit['time']} {hit['source']} {', '.join(hit.get('labels', [])[:3])}")


def show_page(cfg_path: Path, tmp: Path) -> None:
    """The web page: its link, and a screenshot of it after searching for the cat (when chromium is here)."""
    from demo import page

    link = page.page_link(sensorium(cfg_path, "status").stdout)
    if link is None:
        raise DemoError("`sensorium status` printed no page link; see the daemon log")
    say(f"\n$ sensorium status   (its last line: the web page, with its token)\n  page: {link}")
    why = page.missing()
    if why is not None:
        say(f"  no screenshot: {why}")
        return
    out = page.screenshot(link, tmp / "page.png")
    say(f'  the page after searching "{page.SEARCH}" and opening its moment (headless chromium): {out}')


def stop_daemon(proc: subprocess.Popen) -> None:
    t0 = time.monotonic()
    stop_process(proc, 15.0)
    if proc.returncode != 0:
        raise DemoError(f"the daemon exited {proc.returncode} on SIGTERM")
    say(f"\ndaemon stopped in {time.monotonic() - t0:.1f} s")


def run(args: argparse.Namespace, tmp: Path, stack: ExitStack) -> None:
    for tool in TOOLS:
        which(tool)
    images = photos()
    _, cache, _ = config.default_dirs()  # the user's model cache, before SENSORIUM_HOME points at tmp
    os.environ.update({"SENSORIUM_HOME": str(tmp / "home"), "SENSORIUM_CACHE": str(cache)})

    display = Display(tmp, size=f"{SCREEN[0]}x{SCREEN[1]}x24")
    stack.callback(display.close)
    display.start()
    display.show(images[SLIDES[0]])
    pulse = Pulse(tmp, sink="sensorium_demo")
    stack.callback(pulse.stop)
    pulse.start()
    camera = stack.enter_context(MjpegServer([images[CAMERA]], fps=10))
    os.environ.update({"DISPLAY": display.name, **pulse.env()})  # what the daemon's sensors open
    clips = sounds(tmp)

    cfg_path = tmp / "demo.toml"
    cfg_path.write_text(CONFIG.format(camera=camera.url))
    ensure_models(cfg_path)
    say(f"screen      Xvfb {display.name}: a slideshow of {', '.join(SLIDES)} (photos and pages of text)")
    say(f"camera      {camera.url}: {CAMERA}")
    say(f"microphone  PulseAudio null sink {pulse.sink}, its monitor is the default input")
    say(f"memory      {tmp / 'home'} (models from {cache})\n")

    log = tmp / "daemon.log"
    daemon = start_daemon(cfg_path, log, stack)
    say(log.read_text().rstrip())  # the daemon's table of sensors
    wait_running(cfg_path)
    add_watch(cfg_path)
    say(f"\nrunning for {args.seconds:g} s; live `sensorium tail` (a line when labels change) and the watch's matches:")
    tail, printer, counts = start_tail(cfg_path, stack)
    matches, match_printer, _ = start_tail(cfg_path, stack, "match.")
    scenario(display, pulse, images, clips, args.seconds)
    wait_transcribed(cfg_path)
    time.sleep(config.load(cfg_path).store.flush_s + 1.0)  # the writer's last batch
    for proc, thread in ((tail, printer), (matches, match_printer)):
        stop_process(proc)  # their lines would run into the answers below
        thread.join(timeout=5)
    say(f"tail: {counts[0]} messages, {counts[1]} shown")
    run_queries(cfg_path)
    show_speech(cfg_path)
    show_recall(cfg_path)
    show_mcp(cfg_path)
    show_page(cfg_path, tmp)
    if args.stay:
        say("\nthe daemon and the virtual sensors keep running: open the page link above; Ctrl-C stops everything")
        threading.Event().wait()
    stop_daemon(daemon)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="how long the sensors play (default 30)")
    p.add_argument("--clean", action="store_true", help="delete the demo's memory and thumbnails at exit")
    p.add_argument("--stay", action="store_true", help="keep running after the answers (to look at the page)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="sensorium-demo-"))
    stack = ExitStack()
    code = 0
    try:
        say(f"sensorium demo: virtual screen, camera and microphone for {args.seconds:g} s\n")
        run(args, tmp, stack)
    except KeyboardInterrupt:
        say("\ninterrupted; stopping everything the demo started")
        code = 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:  # MissingTool, DemoError, QueryError…
        say(f"\nsensorium demo: {e}")
        code = 2 if isinstance(e, MissingTool) else 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        stack.close()
    if args.clean:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        say(f"demo files (memory, thumbnails, daemon log) are in {tmp}; remove them with: rm -rf {tmp}")
    return code


if __name__ == "__main__":
    sys.exit(main())
