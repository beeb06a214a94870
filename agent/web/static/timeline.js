// The timeline: a lane per stream over one view (a day down to a minute), counts as bars, thumbnails,
// sound labels and words as items; zoom, step, jump, follow "now", and live memories from the stream.

import { el, get, clock, day, when, duration, laneOf, senseName, kindOf, gist } from "./api.js";

export const ZOOMS = [86400, 21600, 3600, 900, 300, 60]; // view widths, seconds: 1 d … 1 min
const LABEL_W = 150; // px, the lane names' column (style.css: --label-w)
const BIN_PX = 6; // about one bin per 6 px of track
const ITEM_W = { image: 64, audio: 76, text: 150, moment: 16 }; // px per item in a lane's strip (style.css)
const GAP = 3;
const TICKS = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
const KIND_ORDER = { screen: 0, camera: 1, microphone: 2 };
const MODALITY_ORDER = { image: 0, audio: 0, text: 1, moment: 2 };

const nowS = () => Date.now() / 1000;
const px = (x) => `${x.toFixed(1)}px`;

export class Timeline {
  /** `root`: #timeline; `bar`: the toolbar's range and zoom labels and buttons; `onPick(item | {at})`. */
  constructor(root, bar, onPick) {
    this.root = root;
    this.bar = bar;
    this.onPick = onPick;
    this.zoom = ZOOMS.indexOf(3600);
    this.follow = true; // the view ends at now and moves with it
    this.until = this.nowEdge();
    this.data = null; // the last timeline reply, updated by live memories
    this.streams = new Map(); // lane → {source, modality}: lanes shown even when empty
    this.selected = null; // {id, ts} of the memory the detail panel shows
    this.seq = 0;
    this.view = null; // what render() drew: per lane its nodes, so live memories change it in place
    this.reloadTimer = null;
    this.wheelAt = 0;
    root.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    setInterval(() => {
      this.placeMarks(); // the now line moves on
      if (this.follow && nowS() > this.until) this.reloadSoon(0);
    }, 5000);
    let resize = null;
    window.addEventListener("resize", () => {
      clearTimeout(resize);
      resize = setTimeout(() => this.load(), 250);
    });
  }

  get span() {
    return ZOOMS[this.zoom];
  }

  get since() {
    return this.until - this.span;
  }

  nowEdge() {
    return nowS() + this.span * 0.03; // a little room after now, so the newest bin is not at the edge
  }

  trackWidth() {
    return Math.max(200, this.root.clientWidth - LABEL_W);
  }

  // ---- moving the view ---------------------------------------------------------------------------

  now() {
    this.follow = true;
    this.until = this.nowEdge();
    return this.load();
  }

  /** Centre the view on `ts`, at the zoom level `zoom` seconds wide when given (one of ZOOMS). */
  centre(ts, zoom) {
    if (ZOOMS.includes(zoom)) this.zoom = ZOOMS.indexOf(zoom);
    this.until = ts + this.span / 2;
    this.follow = false;
    return this.load();
  }

  step(direction) {
    this.until += direction * this.span;
    if (this.until >= nowS()) return this.now(); // nothing to see in the future: follow now instead
    this.follow = false;
    return this.load();
  }

  /** One zoom level in (+1) or out (−1), keeping the time at `frac` of the view (default: its middle) in place. */
  zoomBy(direction, frac = 0.5) {
    const next = Math.min(ZOOMS.length - 1, Math.max(0, this.zoom + direction));
    if (next === this.zoom) return;
    const at = this.since + frac * this.span;
    this.zoom = next;
    if (this.follow) {
      this.until = this.nowEdge();
    } else {
      this.until = at + (1 - frac) * this.span;
      if (this.until >= nowS()) return this.now();
    }
    return this.load();
  }

  wheel(e) {
    e.preventDefault();
    const t = performance.now();
    if (t - this.wheelAt < 180 || Math.abs(e.deltaY) < 1) return; // one level per flick, not per wheel event
    this.wheelAt = t;
    const track = this.root.querySelector(".track");
    let frac = 0.5;
    if (track) {
      const r = track.getBoundingClientRect();
      frac = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    }
    this.zoomBy(e.deltaY < 0 ? 1 : -1, frac);
  }

  select(m) {
    this.selected = m && m.ts !== undefined ? { id: m.id || null, ts: m.ts, lane: m.id ? laneOf(m) : null } : null;
    this.placeMarks();
    for (const node of this.root.querySelectorAll(".item")) this.mark(node);
  }

  // ---- data --------------------------------------------------------------------------------------

  /** Lanes to show even when a view has nothing in them (from the status: which sources and senses run). */
  setStreams(streams) {
    let changed = false;
    for (const s of streams) {
      if (!this.streams.has(s.lane)) {
        this.streams.set(s.lane, s);
        changed = true;
      }
    }
    if (changed && this.data) this.render();
  }

  async load() {
    const seq = ++this.seq;
    const bins = Math.max(20, Math.min(500, Math.round(this.trackWidth() / BIN_PX)));
    const since = this.since;
    const until = this.until;
    this.root.setAttribute("aria-busy", "true");
    this.showRange(since, until);
    try {
      const reply = await get("timeline", { since: +since.toFixed(3), until: +until.toFixed(3), bins });
      if (seq !== this.seq) return;
      this.data = reply;
      this.bar.note.textContent = "";
    } catch (e) {
      if (seq !== this.seq) return;
      this.bar.note.textContent = `timeline: ${e.message}`;
      this.data = { since, until, bins, width: (until - since) / bins, lanes: [], failed: true };
    } finally {
      if (seq === this.seq) this.root.removeAttribute("aria-busy");
    }
    this.render();
  }

  /** At start: the last hour that holds memories, when the hour before now holds none. */
  async start() {
    await this.now();
    if (this.hasItems()) return;
    try {
      const until = nowS();
      const reply = await get("timeline", { since: Math.floor(until - 30 * 86400), until: Math.ceil(until), bins: 500 });
      let last = null;
      for (const lane of reply.lanes || []) {
        lane.counts.forEach((n, i) => {
          if (n > 0 && (last === null || i > last)) last = i;
        });
      }
      if (last !== null && this.follow && !this.hasItems()) {
        const end = reply.since + (last + 1) * reply.width;
        this.follow = false;
        this.until = end + this.span * 0.05;
        await this.load();
      }
    } catch {
      // the view at now stays; its note says why when the daemon is down
    }
  }

  hasItems() {
    return !!this.data && this.data.lanes.some((l) => l.counts.some((n) => n > 0));
  }

  /** A memory from the live stream: counted into its bin, and its bin's item when the bin had none. */
  live(m) {
    if (this.follow && m.ts >= this.until) this.reloadSoon(1000); // now moved on: the view follows
    const d = this.data;
    if (!d || !(m.ts >= d.since && m.ts < d.until)) return;
    const name = laneOf(m);
    let lane = d.lanes.find((l) => l.lane === name);
    if (!lane) {
      lane = { lane: name, source: m.source, modality: m.modality, counts: new Array(d.bins).fill(0), items: [] };
      d.lanes.push(lane);
    }
    lane.seen = lane.seen || new Set(lane.items.map((it) => it.id));
    if (lane.seen.has(m.id)) return; // the same memory again, in another embedding space
    lane.seen.add(m.id);
    const bin = Math.min(d.bins - 1, Math.floor((m.ts - d.since) / d.width));
    lane.counts[bin] += 1;
    let item = null;
    if (!lane.items.some((it) => it.bin === bin)) {
      item = { bin, id: m.id, ts: m.ts, source: m.source, modality: m.modality, labels: m.labels || [] };
      Object.assign(item, { thumb: m.thumb || null, thumb_url: m.thumb_url || null, text: m.text || null });
      lane.items.push(item);
      lane.items.sort((a, b) => a.bin - b.bin);
    }
    const view = this.view && this.view.lanes.get(name);
    if (!view || this.view.empty) {
      this.render(); // a lane the view did not have yet
      return;
    }
    // in place: nodes under the pointer are never replaced, so a click is not lost to an update
    this.updateBars(view, lane, bin);
    view.count.textContent = String(lane.counts.reduce((a, b) => a + b, 0));
    if (item) this.place(view, item);
    this.placeMarks();
  }

  /** A forget: its items go at once, then the view is read again for exact counts. */
  forgot(since, until) {
    const lo = since ?? -Infinity;
    const hi = until ?? Infinity;
    const d = this.data;
    if (d) {
      for (const lane of d.lanes) {
        lane.items = lane.items.filter((it) => it.ts < lo || it.ts > hi);
        lane.counts = lane.counts.map((n, i) => {
          const a = d.since + i * d.width;
          return a >= lo && a + d.width <= hi ? 0 : n; // bins wholly inside the range are empty now
        });
      }
      this.render();
    }
    if (this.selected && this.selected.ts >= lo && this.selected.ts <= hi) this.select(null);
    this.reloadSoon(300);
  }

  reloadSoon(ms) {
    if (this.reloadTimer) return;
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = null;
      if (this.follow) this.until = this.nowEdge();
      this.load();
    }, ms);
  }

  // ---- drawing -----------------------------------------------------------------------------------

  showRange(since, until) {
    const secs = this.span < 21600; // a view of hours or more reads well enough in minutes
    this.bar.range.textContent =
      day(since) === day(until)
        ? `${day(since)}  ${clock(since, secs)} – ${clock(until, secs)}`
        : `${day(since)} ${clock(since, secs)} – ${day(until).slice(5)} ${clock(until, secs)}`;
    this.bar.zoom.textContent = duration(this.span);
    this.bar.zoomIn.disabled = this.zoom === ZOOMS.length - 1;
    this.bar.zoomOut.disabled = this.zoom === 0;
    this.bar.now.setAttribute("aria-pressed", String(this.follow));
  }

  lanes() {
    const d = this.data;
    const byName = new Map(d.lanes.map((l) => [l.lane, l]));
    for (const [name, s] of this.streams) {
      if (byName.has(name)) continue;
      const lane = { ...s, lane: name, counts: new Array(d.bins).fill(0), items: [] };
      d.lanes.push(lane); // the same object for drawing and for live memories
      byName.set(name, lane);
    }
    const rank = (l) => [
      l.modality === "moment" ? 9 : (KIND_ORDER[kindOf(l.source)] ?? 3),
      l.modality === "moment" ? "" : l.source,
      MODALITY_ORDER[l.modality] ?? 3,
    ];
    return [...byName.values()].sort((a, b) => {
      const [x, y] = [rank(a), rank(b)];
      return x[0] - y[0] || x[1].localeCompare(y[1]) || x[2] - y[2];
    });
  }

  /** The whole view from this.data; live memories and selection then change it in place. */
  render() {
    const d = this.data;
    if (!d) return;
    const width = this.trackWidth();
    const lanes = this.lanes();
    const empty = !lanes.some((l) => l.counts.some((n) => n > 0));
    this.view = { width, lanes: new Map(), tracks: [], empty };
    const rows = [this.axis(d, width)];
    for (const lane of lanes) rows.push(this.lane(d, lane, width));
    if (empty && !d.failed) {
      rows.push(
        el("p", { class: "empty" }, `Nothing captured between ${when(d.since)} and ${when(d.until)}. `,
          "Step back with ←, zoom out, or jump to a time."),
      );
    }
    this.root.replaceChildren(...rows);
    this.placeMarks();
  }

  x(ts) {
    const d = this.data;
    return ((ts - d.since) / (d.until - d.since)) * this.view.width;
  }

  axis(d, width) {
    const span = d.until - d.since;
    const stepS = TICKS.find((s) => span / s <= width / 90) || 86400;
    const ticks = [];
    const offset = -new Date(d.since * 1000).getTimezoneOffset() * 60; // ticks on local round times
    for (let t = Math.ceil((d.since + offset) / stepS) * stepS - offset; t <= d.until; t += stepS) {
      const x = this.x(t);
      if (x < 24 || x > width - 24) continue; // a label cut by the edge helps nobody
      const midnight = clock(t, false) === "00:00" && stepS >= 3600;
      const label = midnight ? day(t).slice(5) : clock(t, stepS < 60);
      ticks.push(el("span", { class: "tick", style: { left: px(x) } }, label));
    }
    const track = el("div", { class: "track" }, ...ticks);
    this.view.tracks.push(track);
    return el("div", { class: "axis", "aria-hidden": "true" }, el("div", { class: "lane-label" }), track);
  }

  /** The "now" line and the selected memory's line in every track, when in view. */
  placeMarks() {
    if (!this.view || !this.data) return;
    const d = this.data;
    const t = nowS();
    const s = this.selected;
    const at = {
      "now-mark": t >= d.since && t <= d.until ? this.x(t) : null,
      "cursor-mark": s && s.ts >= d.since && s.ts <= d.until ? this.x(s.ts) : null,
    };
    for (const track of this.view.tracks) {
      for (const [cls, x] of Object.entries(at)) {
        let node = track.querySelector(`:scope > .${cls}`);
        if (x === null) {
          if (node) node.remove();
          continue;
        }
        if (!node) track.append((node = el("div", { class: cls })));
        node.style.left = px(x);
      }
    }
  }

  lane(d, lane, width) {
    const kind = lane.modality in ITEM_W ? lane.modality : "text";
    const name = senseName(lane.source, lane.modality);
    const view = { lane: lane.lane, kind, name, bars: new Map(), max: 0, right: -Infinity };
    view.barsBox = this.barsBox(d, lane);
    view.strip = el("div", { class: "strip" });
    view.count = el("span", { class: "lane-count", text: String(lane.counts.reduce((a, b) => a + b, 0)) });
    this.view.lanes.set(lane.lane, view);
    view.max = Math.max(1, ...lane.counts);
    lane.counts.forEach((n, i) => n && this.updateBars(view, lane, i));
    for (const it of lane.items) this.place(view, it);
    const label = el("div", { class: "lane-label", title: lane.lane }, el("span", { class: "lane-name", text: name }), view.count);
    const track = el("div", { class: "track" }, view.barsBox, view.strip);
    this.view.tracks.push(track);
    return el("div", { class: `lane lane-${kind}`, data: { lane: lane.lane }, role: "group", "aria-label": name }, label, track);
  }

  barsBox(d, lane) {
    const box = el("div", { class: "bars" });
    box.addEventListener("click", (e) => {
      const r = box.getBoundingClientRect();
      const bin = Math.min(d.bins - 1, Math.floor(((e.clientX - r.left) / r.width) * d.bins));
      if (!lane.counts[bin]) return;
      const item = lane.items.find((it) => it.bin === bin);
      this.onPick(item || { at: d.since + (bin + 0.5) * d.width });
    });
    return box;
  }

  /** Bin `bin`'s bar at its count; every bar of the lane when the lane's largest count grew. */
  updateBars(view, lane, bin) {
    const d = this.data;
    const n = lane.counts[bin];
    const rescale = n > view.max;
    view.max = Math.max(view.max, n);
    const height = (k) => `${Math.max(12, Math.round((Math.sqrt(k) / Math.sqrt(view.max)) * 100))}%`;
    let bar = view.bars.get(bin);
    if (!bar) {
      const w = this.view.width / d.bins;
      bar = el("div", { class: "bar", style: { left: px(bin * w), width: px(Math.max(1, w - 1)) } });
      view.bars.set(bin, bar);
      view.barsBox.append(bar);
    }
    const a = d.since + bin * d.width;
    bar.title = `${n} ${n === 1 ? "memory" : "memories"}, ${clock(a)} – ${clock(a + d.width)}`;
    bar.style.height = height(n);
    if (rescale) for (const [i, b] of view.bars) b.style.height = height(lane.counts[i]);
  }

  /** Put a memory where its bin is, unless it would overlap the one before (zoom in to see it). Items
   *  come left to right: the view's first items from the reply, then live ones, which are the newest. */
  place(view, it) {
    const w = ITEM_W[view.kind];
    const width = this.view.width;
    const binW = width / this.data.bins;
    const x = Math.min(Math.max(0, it.bin * binW + binW / 2 - w / 2), width - w);
    if (x < view.right + GAP) return;
    view.right = x + w;
    view.strip.append(this.item(it, view, x));
  }

  /** Mark the selected memory's item, or its bin's item when another memory stands for that bin. */
  mark(node, lane = node.closest(".lane")?.dataset.lane) {
    const s = this.selected;
    const d = this.data;
    const bin = (ts) => Math.floor((ts - d.since) / d.width);
    const on =
      !!s &&
      (s.id === node.dataset.id ||
        (!!s.lane && s.lane === lane && bin(s.ts) === bin(Number(node.dataset.ts))));
    node.classList.toggle("selected", on);
    if (on) node.setAttribute("aria-current", "true");
    else node.removeAttribute("aria-current");
  }

  item(it, view, x) {
    const { kind, name } = view;
    const g = gist(it);
    const title = `${when(it.ts)} · ${name}${g ? " — " + g : ""}`;
    const b = el("button", {
      type: "button",
      class: "item",
      data: { id: it.id, ts: String(it.ts) },
      style: { left: px(x) },
      title,
      "aria-label": title,
      onclick: () => this.onPick(it),
    });
    this.mark(b, view.lane);
    if (kind === "image") {
      if (it.thumb_url) b.append(el("img", { class: "thumb", src: it.thumb_url, alt: "", loading: "lazy", decoding: "async" }));
      else b.append(el("span", { class: "no-thumb", text: "no image" }));
    } else if (kind !== "moment") {
      b.append(el("span", { class: "chip", text: g || "·" }));
    }
    return b;
  }
}
