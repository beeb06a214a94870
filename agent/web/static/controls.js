// The status panel (refreshed every 2 s), pause/resume of all sources or one, and forgetting a range.

import { el, get, post, when, clock, duration, kindOf, learnKinds, toInput, fromInput } from "./api.js";

const EVERY_MS = 2000;
const fmt = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
const int = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString());

export class StatusPanel {
  /** `root`: #status-panel; `onStatus(status)` after every successful read. */
  constructor(root, onStatus) {
    this.root = root;
    this.onStatus = onStatus;
    this.list = root.querySelector(".sources");
    this.facts = root.querySelector(".facts");
    this.note = root.querySelector(".status-note");
    this.uptime = root.querySelector(".uptime");
    this.timer = null;
    root.querySelector("#pause-all").addEventListener("click", (e) => this.control("pause", null, e.currentTarget));
    root.querySelector("#resume-all").addEventListener("click", (e) => this.control("resume", null, e.currentTarget));
  }

  start() {
    return this.refresh();
  }

  async refresh() {
    clearTimeout(this.timer);
    try {
      const { status } = await get("status");
      this.show(status);
      this.note.hidden = true;
      this.root.classList.remove("stale");
      this.onStatus(status);
    } catch (e) {
      this.note.textContent = `Status: ${e.message}`;
      this.note.hidden = false;
      this.root.classList.add("stale"); // what is shown is from the last answer
      if (e.status === 401) return; // the token banner says what to do; polling would only repeat it
    }
    this.timer = setTimeout(() => this.refresh(), EVERY_MS);
  }

  async control(op, source, button) {
    button.disabled = true;
    try {
      await post(op, source ? { source } : {});
    } catch (e) {
      this.note.textContent = `${op}${source ? " " + source : ""}: ${e.message}`;
      this.note.hidden = false;
    } finally {
      button.disabled = false;
    }
    await this.refresh();
  }

  show(st) {
    learnKinds(st.sources);
    this.uptime.textContent = `up ${duration(st.uptime_s || 0)}`;
    const names = Object.keys(st.sources || {});
    for (const row of [...this.list.children]) {
      if (!names.includes(row.dataset.source)) row.remove();
    }
    for (const name of names) {
      let row = this.list.querySelector(`.source[data-source="${CSS.escape(name)}"]`);
      if (!row) {
        row = this.sourceRow(name);
        this.list.append(row);
      }
      this.fillSource(row, st.sources[name]);
    }
    this.facts.replaceChildren(...this.factRows(st));
  }

  sourceRow(name) {
    const pause = el("button", { type: "button", class: "pause", text: "Pause", "aria-label": `Pause ${name}` });
    const resume = el("button", { type: "button", class: "resume", text: "Resume", "aria-label": `Resume ${name}` });
    pause.addEventListener("click", () => this.control("pause", name, pause));
    resume.addEventListener("click", () => this.control("resume", name, resume));
    return el("li", { class: "source", data: { source: name } },
      el("div", { class: "src-head" },
        el("span", { class: "src-name", text: name }),
        el("span", { class: "src-kind muted", text: kindOf(name) }),
        el("span", { class: "state" }),
        el("span", { class: "until muted" }),
        el("span", { class: "src-buttons" }, pause, resume)),
      el("div", { class: "src-rates muted" }),
      el("div", { class: "src-counts muted" }),
      el("div", { class: "src-error" }));
  }

  fillSource(row, s) {
    const state = row.querySelector(".state");
    state.textContent = s.state;
    state.className = `state state-${s.state}`;
    row.querySelector(".src-kind").textContent = kindOf(row.dataset.source);
    row.querySelector(".until").textContent = s.paused_until ? `until ${clock(s.paused_until)}` : "";
    const fps = s.fps || {};
    row.querySelector(".src-rates").textContent =
      `per second: in ${fmt(fps.in)} · kept ${fmt(fps.kept)} · dropped ${fmt(fps.dropped)}`;
    const counts = [`captured ${int(s.captured)}`, `kept ${int(s.kept)}`, `dropped ${int(s.dropped)}`];
    if (s.queue) counts.push(`queue ${s.queue}`);
    if (s.errors) counts.push(`errors ${int(s.errors)}`);
    row.querySelector(".src-counts").textContent = counts.join(" · ");
    const err = row.querySelector(".src-error");
    err.textContent = s.last_error ? `last error: ${s.last_error}` : "";
    err.hidden = !s.last_error;
  }

  factRows(st) {
    const rows = [];
    const add = (name, text, warn = false) => {
      const dd = el("dd", { class: warn ? "warn" : null, text });
      rows.push(el("dt", { text: name }), dd);
      return dd;
    };
    const m = st.memory || {};
    const mem = [`stored ${int(m.stored)}`, `store lag ${fmt(m.store_lag_s)} s`];
    if (m.queued) mem.push(`queued ${int(m.queued)}`);
    if (m.spool_rows) mem.push(`spool ${int(m.spool_rows)} rows`);
    for (const k of ["dropped", "failed", "lost"]) if (m[k]) mem.push(`${k} ${int(m[k])}`);
    add("memory", mem.join(" · "), !!(m.failed || m.lost || m.dropped));
    const mb = (n) => `${(n / 1e6).toFixed(n < 1e8 ? 1 : 0)} MB`;
    const used = m.disk_bytes === null || m.disk_bytes === undefined ? "not measured yet" : mb(m.disk_bytes);
    const cap = m.budget_bytes ? ` of ${mb(m.budget_bytes)}` : " (no size cap)";
    const keep = m.retention_days ? ` · kept ${m.retention_days} days` : " · kept until forgotten";
    add("storage", used + cap + keep, !!(m.budget_bytes && m.disk_bytes > 0.9 * m.budget_bytes));
    for (const [modality, e] of Object.entries(st.encoders || {})) {
      const dev = (st.device || {})[modality] || "?";
      const ms = `${fmt(e.infer_p50_ms)} / ${fmt(e.infer_p95_ms)} ms`;
      add(`${modality} model`, `${e.model} · ${dev} · ${ms}`, !!e.errors).title = "inference p50 / p95";
    }
    const t = st.text || {};
    add("screen text", t.state === "on"
      ? `on ${t.device || "?"} · ${int(t.read)} frames read · ${int(t.memories)} memories`
      : t.state || "off", !!t.errors);
    const s = st.speech || {};
    add("speech", s.state === "on"
      ? `${s.model || "?"} · ${s.device || "?"} · ${int(s.transcribed)} utterances · ${int(s.memories)} memories`
      : s.state || "off", !!s.errors);
    const mo = st.moments || {};
    add("moments", mo.state === "on" ? `every ${mo.interval_s} s · ${int(mo.emitted)} emitted` : mo.state || "off");
    const w = st.watch || {};
    if (w.watches) add("watches", `${w.watches} · fired ${int(w.fired)}`);
    const sick = Object.entries(st.health || {}).filter(([, h]) => h.state !== "ok");
    if (sick.length) add("encoder health", sick.map(([k, h]) => `${k} ${h.state}`).join(" · "), true);
    return rows;
  }
}

export class Forget {
  /** `root`: #forget-panel; `onForgot(since, until)` after the daemon forgot a range. */
  constructor(root, onForgot) {
    this.onForgot = onForgot;
    this.since = root.querySelector("#forget-since");
    this.until = root.querySelector("#forget-until");
    this.note = root.querySelector(".forget-note");
    root.querySelector("#forget-button").addEventListener("click", () => {
      const since = fromInput(this.since.value);
      const until = fromInput(this.until.value);
      if (since === null || until === null) return this.say("Give both times: from and to.", true);
      if (since > until) return this.say("“From” is after “to”.", true);
      this.forget(since, until);
    });
    for (const b of root.querySelectorAll("[data-last]")) {
      b.addEventListener("click", () => {
        const until = Date.now() / 1000;
        const since = until - Number(b.dataset.last);
        this.since.value = toInput(since);
        this.until.value = toInput(until);
        this.forget(since, until);
      });
    }
  }

  say(text, error = false) {
    this.note.textContent = text;
    this.note.classList.toggle("error", error);
  }

  async forget(since, until) {
    const ask = `Forget everything captured from ${when(since)} to ${when(until)}?\n\n` +
      "Memories, thumbnails and words in this range are deleted for good.";
    if (!window.confirm(ask)) return this.say("Nothing forgotten.");
    try {
      const reply = await post("forget", { since, until });
      const n = reply.count ?? 0;
      this.say(`Forgot ${n} ${n === 1 ? "memory" : "memories"} from ${when(since)} to ${when(until)}.`);
      this.onForgot(since, until);
    } catch (e) {
      this.say(`Forget: ${e.message}`, true);
    }
  }
}
