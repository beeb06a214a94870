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
    this.drawQueued = false;
    this.reloadTimer = null;
    this.wheelAt = 0;
    root.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
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

  /** Centre the view on `ts` (at zoom level `zoom` when given) and mark it. */
  centre(ts, zoom) {
    if (zoom !== undefined) this.zoom = ZOOMS.indexOf(zoom) >= 0 ? ZOOMS.indexOf(zoom) : this.zoom;
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
    this.selected = m && m.ts !== undefined ? { id: m.id || null, ts: m.ts } : null;
    this.draw();
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
    if (changed && this.data) this.draw();
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
      this.data = { since, until, bins, width: (until - since) / bins, lanes: [] };
    } finally {
      if (seq === this.seq) this.root.removeAttribute("aria-busy");
    }
    this.draw(true);
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
    if (lane.items.some((it) => it.id === m.id)) return; // the same memory in another embedding space
    lane.seen = lane.seen || new Set();
    if (lane.seen.has(m.id)) return;
    lane.seen.add(m.id);
    const bin = Math.min(d.bins - 1, Math.floor((m.ts - d.since) / d.width));
    lane.counts[bin] += 1;
    if (!lane.items.some((it) => it.bin === bin)) {
      const item = { bin, id: m.id, ts: m.ts, source: m.source, modality: m.modality, labels: m.labels || [] };
      Object.assign(item, { thumb: m.thumb || null, thumb_url: m.thumb_url || null, text: m.text || null });
      lane.items.push(item);
      lane.items.sort((a, b) => a.bin - b.bin);
    }
    this.draw();
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
      this.draw();
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

  draw(now = false) {
    if (now) {
      this.drawQueued = false;
      this.render();
      return;
    }
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      if (!this.drawQueued) return;
      this.drawQueued = false;
      this.render();
    });
  }

  showRange(since, until) {
    const same = day(since) === day(until);
    this.bar.range.textContent = same
      ? `${day(since)}  ${clock(since)} – ${clock(until)}`
      : `${day(since)} ${clock(since)} – ${day(until)} ${clock(until)}`;
    this.bar.zoom.textContent = duration(this.span);
    this.bar.zoomIn.disabled = this.zoom === ZOOMS.length - 1;
    this.bar.zoomOut.disabled = this.zoom === 0;
    this.bar.now.setAttribute("aria-pressed", String(this.follow));
  }

  lanes() {
    const d = this.data;
    const byName = new Map(d.lanes.map((l) => [l.lane, l]));
    for (const [name, s] of this.streams) {
      if (!byName.has(name)) byName.set(name, { ...s, lane: name, counts: [], items: [] });
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

  render() {
    const d = this.data;
    if (!d) return;
    const width = this.trackWidth();
    const lanes = this.lanes();
    const rows = [this.axis(d, width)];
    for (const lane of lanes) rows.push(this.lane(d, lane, width));
    if (!lanes.length || !lanes.some((l) => l.counts.some((n) => n > 0))) {
      rows.push(
        el("p", { class: "empty" }, `Nothing captured between ${when(d.since)} and ${when(d.until)}. `,
          "Step back with ←, zoom out, or jump to a time."),
      ); // prettier-ignore
    }
    this.root.replaceChildren(...rows);
  }

  x(ts, width) {
    const d = this.data;
    return ((ts - d.since) / (d.until - d.since)) * width;
  }

  axis(d, width) {
    const span = d.until - d.since;
    const stepS = TICKS.find((s) => span / s <= width / 90) || 86400;
    const ticks = [];
    const offset = -new Date(d.since * 1000).getTimezoneOffset() * 60; // ticks on local round times
    for (let t = Math.ceil((d.since + offset) / stepS) * stepS - offset; t <= d.until; t += stepS) {
      const midnight = clock(t, false) === "00:00" && stepS >= 3600;
      const label = midnight ? day(t).slice(5) : clock(t, stepS < 60);
      ticks.push(el("span", { class: "tick", style: `left:${this.x(t, width).toFixed(1)}px` }, label));
    }
    return el("div", { class: "axis", "aria-hidden": "true" }, el("div", { class: "lane-label" }),
      el("div", { class: "track" }, ...ticks, ...this.marks(d, width))); // prettier-ignore
  }

  /** The "now" line and the selected memory's line, when in view. */
  marks(d, width) {
    const out = [];
    const t = nowS();
    if (t >= d.since && t <= d.until) out.push(el("div", { class: "now-mark", style: `left:${this.x(t, width)}px` }));
    const s = this.selected;
    if (s && s.ts >= d.since && s.ts <= d.until) {
      out.push(el("div", { class: "cursor-mark", style: `left:${this.x(s.ts, width)}px` }));
    }
    return out;
  }

  lane(d, lane, width) {
    const kind = lane.modality in ITEM_W ? lane.modality : "text";
    const total = lane.counts.reduce((a, b) => a + b, 0);
    const name = senseName(lane.source, lane.modality);
    const bars = this.bars(d, lane, width);
    const strip = el("div", { class: "strip" }, ...this.items(d, lane, kind, width, name));
    const label = el("div", { class: "lane-label", title: lane.lane },
      el("span", { class: "lane-name", text: name }), el("span", { class: "lane-count", text: String(total) })); // prettier-ignore
    const track = el("div", { class: "track" }, bars, strip, ...this.marks(d, width));
    return el("div", { class: `lane lane-${kind}`, data: { lane: lane.lane }, role: "group", "aria-label": name }, label, track);
  }

  bars(d, lane, width) {
    const max = Math.max(1, ...lane.counts);
    const w = width / d.bins;
    const nodes = [];
    lane.counts.forEach((n, i) => {
      if (!n) return;
      const a = d.since + i * d.width;
      const h = Math.max(12, Math.round((Math.sqrt(n) / Math.sqrt(max)) * 100));
      const style = `left:${(i * w).toFixed(1)}px;width:${Math.max(1, w - 1).toFixed(1)}px;height:${h}%`;
      const title = `${n} ${n === 1 ? "memory" : "memories"}, ${clock(a)} – ${clock(a + d.width)}`;
      nodes.push(el("div", { class: "bar", style, title }));
    });
    const box = el("div", { class: "bars" }, ...nodes);
    box.addEventListener("click", (e) => {
      const r = box.getBoundingClientRect();
      const bin = Math.min(d.bins - 1, Math.floor(((e.clientX - r.left) / r.width) * d.bins));
      if (!lane.counts[bin]) return;
      const item = lane.items.find((it) => it.bin === bin);
      this.onPick(item || { at: d.since + (bin + 0.5) * d.width });
    });
    return box;
  }

  /** The lane's representative memories, left to right, each where its bin is, skipping those that would
   *  overlap the one before (zoom in to see them). */
  items(d, lane, kind, width, name) {
    const w = ITEM_W[kind];
    const binW = width / d.bins;
    const nodes = [];
    let right = -Infinity;
    for (const it of lane.items) {
      let x = Math.max(0, it.bin * binW + binW / 2 - w / 2);
      x = Math.min(x, width - w);
      if (x < right + GAP) continue;
      right = x + w;
      nodes.push(this.item(it, kind, x, name));
    }
    return nodes;
  }

  item(it, kind, x, name) {
    const g = gist(it);
    const title = `${when(it.ts)} · ${name}${g ? " — " + g : ""}`;
    const selected = this.selected && this.selected.id === it.id;
    const b = el("button", {
      type: "button",
      class: `item${selected ? " selected" : ""}`,
      data: { id: it.id, ts: String(it.ts) },
      style: `left:${x.toFixed(1)}px`,
      title,
      "aria-label": title,
      "aria-current": selected ? "true" : null,
      onclick: () => this.onPick(it),
    });
    if (kind === "image") {
      if (it.thumb_url) b.append(el("img", { class: "thumb", src: it.thumb_url, alt: "", loading: "lazy", decoding: "async" }));
      else b.append(el("span", { class: "no-thumb", text: "no image" }));
    } else if (kind !== "moment") {
      b.append(el("span", { class: "chip", text: g || "·" }));
    }
    return b;
  }
}
