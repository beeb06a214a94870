// Search: words typed in the box, or an image dropped on the page (or picked), against all of memory.

import { el, post, when, clock, senseName, marked, gist } from "./api.js";

const K = 20;
const MAX_SIDE = 1024; // px: larger images are scaled down before sending (the models read 224–384 px)
const MAX_RAW = 512 * 1024; // bytes: smaller files are sent as they are

export class Search {
  /** `form`: #search-form; `list`: #search-results; `onPick(result)`. */
  constructor(form, list, onPick) {
    this.form = form;
    this.list = list;
    this.onPick = onPick;
    this.input = form.querySelector("#search-input");
    this.modality = form.querySelector("#search-modality");
    this.file = document.getElementById("search-image");
    this.summary = document.getElementById("search-summary");
    this.seq = 0;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = this.input.value.trim();
      if (text) this.run({ text }, `“${text}”`);
    });
    this.file.addEventListener("change", () => {
      if (this.file.files.length) this.image(this.file.files[0]);
      this.file.value = "";
    });
    this.dropZone();
  }

  dropZone() {
    const overlay = document.getElementById("drop-overlay");
    let depth = 0;
    const hasFile = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
    document.addEventListener("dragenter", (e) => {
      if (!hasFile(e)) return;
      depth += 1;
      overlay.hidden = false;
    });
    document.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) overlay.hidden = true;
    });
    document.addEventListener("dragover", (e) => {
      if (hasFile(e)) e.preventDefault();
    });
    document.addEventListener("drop", (e) => {
      if (!hasFile(e)) return;
      e.preventDefault();
      depth = 0;
      overlay.hidden = true;
      const f = [...e.dataTransfer.files].find((x) => x.type.startsWith("image/")) || e.dataTransfer.files[0];
      if (f) this.image(f);
    });
  }

  async image(file) {
    let url;
    try {
      url = await encode(file);
    } catch {
      this.say(`${file.name} could not be read as an image.`, "error");
      return;
    }
    const preview = el("img", { class: "query-image", src: url, alt: file.name, title: file.name });
    this.run({ image_b64: url.slice(url.indexOf(",") + 1) }, preview);
  }

  /** POST the query and list what comes back; `what` says what was asked (text, or the image's preview). */
  async run(body, what) {
    const seq = ++this.seq;
    const modality = this.modality.value || null;
    this.list.setAttribute("aria-busy", "true");
    this.say(["Searching for ", what, "…"]);
    let reply;
    try {
      reply = await post("query", { ...body, k: K, modality });
    } catch (e) {
      if (seq === this.seq) {
        this.say(e.message, "error");
        this.list.replaceChildren();
        this.list.removeAttribute("aria-busy");
      }
      return;
    }
    if (seq !== this.seq) return;
    this.list.removeAttribute("aria-busy");
    const results = reply.results || [];
    this.list.replaceChildren(...results.map((r) => this.result(r)));
    if (results.length) {
      this.say([`${results.length} ${results.length === 1 ? "memory" : "memories"} for `, what]);
    } else {
      this.say(["No memories match ", what, this.why(reply)], "none");
    }
  }

  /** Why nothing came back: hits under the no-answer threshold, and what time memory holds. */
  why(reply) {
    const parts = [];
    if (reply.below) parts.push(`${reply.below} below the threshold`);
    const span = reply.span;
    const lo = Array.isArray(span) ? span[0] : span && (span.since ?? span.first ?? span.lo);
    const hi = Array.isArray(span) ? span[1] : span && (span.until ?? span.last ?? span.hi);
    if (typeof lo === "number" && typeof hi === "number") parts.push(`memory holds ${when(lo)} to ${when(hi)}`);
    else if (span === null && "span" in reply) parts.push("memory is empty");
    return parts.length ? ` (${parts.join("; ")})` : "";
  }

  say(what, kind = "") {
    this.summary.className = `search-summary ${kind}`;
    this.summary.replaceChildren(...[what].flat());
    this.summary.hidden = false;
  }

  result(r) {
    const b = el("button", {
      type: "button",
      class: "result",
      data: { id: r.id, ts: String(r.ts) },
      onclick: () => {
        for (const x of this.list.querySelectorAll(".result[aria-current]")) x.removeAttribute("aria-current");
        b.setAttribute("aria-current", "true");
        this.onPick(r);
      },
    });
    if (r.thumb_url) b.append(el("img", { class: "thumb", src: r.thumb_url, alt: "", loading: "lazy" }));
    else b.append(el("span", { class: `thumb-none m-${r.modality}`, "aria-hidden": "true", text: glyph(r.modality) }));
    const score = r.score ? r.score.toFixed(3) : "words";
    const meta = el("span", { class: "meta" },
      el("time", { datetime: new Date(r.ts * 1000).toISOString(), text: when(r.ts) }),
      el("span", { class: "sense-name", text: senseName(r.source, r.modality) }),
      el("span", { class: "score", title: "best cosine similarity", text: score }));
    const body = el("span", { class: "result-body" }, meta);
    if (r.labels && r.labels.length && !r.text) body.append(el("span", { class: "labels", text: r.labels.slice(0, 4).join(", ") }));
    if (r.snippet) body.append(el("span", { class: "snippet" }, ...marked(r.snippet)));
    else if (r.text) body.append(el("span", { class: "snippet", text: gist(r).slice(0, 200) }));
    if (r.modality === "moment" && r.extra) {
      const end = r.extra.end ? `until ${clock(Number(r.extra.end))}` : "";
      body.append(el("span", { class: "labels", text: [end, gist(r)].filter(Boolean).join(", ") }));
    }
    b.append(body);
    return el("li", {}, b);
  }

  /** A forget: its results go from the list. */
  forgot(since, until) {
    const lo = since ?? -Infinity;
    const hi = until ?? Infinity;
    let gone = 0;
    for (const b of this.list.querySelectorAll(".result")) {
      const ts = Number(b.dataset.ts);
      if (ts >= lo && ts <= hi) {
        b.closest("li").remove();
        gone += 1;
      }
    }
    const left = this.list.querySelectorAll(".result").length;
    if (gone) this.say(`${gone} ${gone === 1 ? "result was" : "results were"} forgotten; ${left} left`);
  }
}

function glyph(modality) {
  return { audio: "♪", text: "T", moment: "◇", image: "▢" }[modality] || "•";
}

/** The image as a data: URL (base64 after the comma): as it is when small, else scaled down as JPEG. */
async function encode(file) {
  if (file.size <= MAX_RAW) {
    const url = await new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.readAsDataURL(file);
    });
    if (!String(url).startsWith("data:image/")) throw new Error("not an image");
    return String(url);
  }
  const bmp = await createImageBitmap(file);
  const scale = Math.min(1, MAX_SIDE / Math.max(bmp.width, bmp.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bmp.width * scale);
  canvas.height = Math.round(bmp.height * scale);
  canvas.getContext("2d").drawImage(bmp, 0, 0, canvas.width, canvas.height);
  bmp.close();
  return canvas.toDataURL("image/jpeg", 0.9);
}
