// The detail panel: what every sense captured around one memory (or a time), grouped by sense.

import { el, get, when, clock, signed, senseName, gist } from "./api.js";

const WINDOW = 30; // seconds either side

export class Detail {
  /** `root`: #detail; `onPick(hit)`: a memory in the panel was chosen (show it on the timeline). */
  constructor(root, onPick) {
    this.root = root;
    this.onPick = onPick;
    this.anchor = null;
    this.seq = 0;
    this.empty();
  }

  empty() {
    this.anchor = null;
    this.root.replaceChildren(
      el("h2", { class: "panel-title", text: "Around a moment" }),
      el("p", { class: "hint", text: "Choose a memory on the timeline or in the search results to see what else was captured then." }),
    );
  }

  /** Show what happened around `m`: a memory (with id) or {at: unix seconds}. */
  async open(m) {
    const seq = ++this.seq;
    this.anchor = m;
    const at = m.id ? m.ts : m.at;
    const head = this.header(m, at);
    this.root.replaceChildren(head, el("p", { class: "hint", text: "Loading…" }));
    this.root.setAttribute("aria-busy", "true");
    let reply;
    try {
      reply = await get("around", m.id ? { id: m.id, window: WINDOW } : { at: +at.toFixed(3), window: WINDOW });
    } catch (e) {
      if (seq === this.seq) {
        this.root.replaceChildren(head, el("p", { class: "error", role: "alert", text: e.message }));
        this.root.removeAttribute("aria-busy");
      }
      return;
    }
    if (seq !== this.seq) return;
    this.root.removeAttribute("aria-busy");
    const groups = reply.senses || [];
    const body = groups.length
      ? groups.map((g) => this.sense(g))
      : [el("p", { class: "hint", text: `No other memories within ±${reply.window} s.` })];
    this.root.replaceChildren(this.header(m, reply.at), ...body);
  }

  header(m, at) {
    const close = el("button", { type: "button", class: "close", "aria-label": "Close", title: "Close (Esc)", text: "×" });
    close.addEventListener("click", () => this.empty());
    const title = el("h2", { class: "panel-title" }, `Around ${when(at)}`, el("span", { class: "muted", text: ` ±${WINDOW} s` }));
    const out = el("div", { class: "detail-head" }, title, close);
    if (!m.id) return out;
    const anchor = el("div", { class: "anchor" });
    if (m.thumb_url) anchor.append(el("img", { class: "thumb", src: m.thumb_url, alt: "" }));
    anchor.append(
      el("div", { class: "anchor-text" },
        el("div", { class: "meta", text: `${senseName(m.source, m.modality)} · ${clock(m.ts)}` }),
        el("div", { class: "gist", text: gist(m) || "" })),
    );
    return el("div", {}, out, anchor);
  }

  sense(g) {
    const list = el("ul", { class: "hits" });
    for (const h of g.hits) {
      const text = gist(h);
      const b = el("button", { type: "button", class: "hit", data: { id: h.id, ts: String(h.ts) }, title: `${when(h.ts)} ${text}` });
      if (h.thumb_url) b.append(el("img", { class: "thumb", src: h.thumb_url, alt: "", loading: "lazy" }));
      b.append(el("span", { class: "dt", text: signed(h.dt ?? h.ts - this.anchorTs()) }));
      if (text) b.append(el("span", { class: h.text ? "words" : "labels", text }));
      b.addEventListener("click", () => this.onPick(h));
      list.append(el("li", {}, b));
    }
    const kind = g.modality === "image" ? "images" : "rows";
    return el("section", { class: `sense sense-${kind}`, data: { sense: g.sense } },
      el("h3", { text: senseName(g.source, g.modality) }), list);
  }

  anchorTs() {
    return this.anchor ? (this.anchor.id ? this.anchor.ts : this.anchor.at) : 0;
  }

  /** A forget: drop what the panel shows from the range (the anchor itself: the whole panel). */
  forgot(since, until) {
    const lo = since ?? -Infinity;
    const hi = until ?? Infinity;
    if (!this.anchor) return;
    const t = this.anchorTs();
    if (this.anchor.id && t >= lo && t <= hi) {
      this.empty();
      return;
    }
    for (const b of this.root.querySelectorAll(".hit")) {
      const ts = Number(b.dataset.ts);
      if (ts >= lo && ts <= hi) b.closest("li").remove();
    }
  }
}
