// The page: the token first, then the timeline, detail panel, search, status and controls, wired together,
// and the live stream of new memories.

import { takeToken, whenUnauthorized, get, el, when, senseName, kindOf } from "./api.js";
import { Timeline } from "./timeline.js";
import { Detail } from "./detail.js";
import { Search } from "./search.js";
import { StatusPanel, Forget } from "./controls.js";

const $ = (id) => document.getElementById(id);

function locked(reason) {
  const box = $("token-missing");
  box.querySelector(".reason").textContent = reason;
  box.hidden = false;
  $("app").hidden = true;
}

function main() {
  if (!takeToken()) {
    locked("This page needs the daemon's access token.");
    return;
  }
  whenUnauthorized(() => locked("The daemon refused this page's token."));

  const bar = {
    range: $("view-range"),
    zoom: $("zoom-level"),
    zoomIn: $("zoom-in"),
    zoomOut: $("zoom-out"),
    now: $("now"),
    note: $("timeline-note"),
  };
  let timeline = null;
  const detail = new Detail($("detail"), (hit) => show(hit, false));
  /** Show a memory: its neighbourhood in the detail panel, marked on the timeline (centred when `centre`). */
  const show = (m, centre) => {
    const at = m.id ? m.ts : m.at;
    timeline.select(m.id ? m : { ts: at });
    if (centre || at < timeline.since || at > timeline.until) timeline.centre(at, 300);
    detail.open(m);
  };
  timeline = new Timeline($("timeline"), bar, (m) => show(m, false));
  const search = new Search($("search-form"), $("search-results"), (r) => show(r, true));

  bar.zoomIn.addEventListener("click", () => timeline.zoomBy(1));
  bar.zoomOut.addEventListener("click", () => timeline.zoomBy(-1));
  bar.now.addEventListener("click", () => timeline.now());
  $("step-back").addEventListener("click", () => timeline.step(-1));
  $("step-forward").addEventListener("click", () => timeline.step(1));
  const jump = $("jump-time");
  const jumpTo = () => {
    const t = jump.value ? new Date(jump.value).getTime() / 1000 : NaN;
    if (Number.isFinite(t)) {
      timeline.select({ ts: t });
      timeline.centre(t);
    }
  };
  jump.addEventListener("change", jumpTo);
  $("jump-form").addEventListener("submit", (e) => {
    e.preventDefault();
    jumpTo();
  });

  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    const keys = {
      ArrowLeft: () => timeline.step(-1),
      ArrowRight: () => timeline.step(1),
      Home: () => timeline.now(),
      "+": () => timeline.zoomBy(1),
      "=": () => timeline.zoomBy(1),
      "-": () => timeline.zoomBy(-1),
      Escape: () => detail.empty(),
    };
    if (keys[e.key]) {
      e.preventDefault();
      keys[e.key]();
    }
  });

  const forgot = (since, until) => {
    timeline.forgot(since, until);
    search.forgot(since, until);
    detail.forgot(since, until);
  };
  new Forget($("forget-panel"), forgot);
  const status = new StatusPanel($("status-panel"), (st) => {
    timeline.setStreams(streams(st));
    if (timeline.data && timeline.data.failed) timeline.reloadSoon(0); // the daemon is back
  });
  status.start().finally(() => timeline.start());
  listen(timeline, forgot, show);
}

/** The lanes the running configuration fills, so they show (empty) before anything arrives. */
function streams(st) {
  const out = [];
  for (const name of Object.keys(st.sources || {})) {
    const kind = kindOf(name);
    out.push({ lane: name, source: name, modality: kind === "microphone" ? "audio" : "image" });
    const words = kind === "microphone" ? st.speech : kind === "screen" ? st.text : null;
    if (words && words.state === "on") out.push({ lane: `${name}#text`, source: name, modality: "text" });
  }
  if (st.moments && st.moments.state === "on") {
    // moments' stream is "all", prefixed like the sources when [store] agent names this machine ("laptop.all")
    const named = Object.keys(st.sources || {}).find((n) => n.includes("."));
    const all = named ? `${named.slice(0, named.lastIndexOf(".") + 1)}all` : "all";
    out.push({ lane: all, source: all, modality: "moment" });
  }
  return out;
}

/** New memories, watch matches and forgets as they happen (Server-Sent Events; the cookie carries the token). */
function listen(timeline, forgot, show) {
  const live = $("live");
  const state = (text, on) => {
    live.textContent = text;
    live.classList.toggle("on", on);
  };
  let retry = null;
  const connect = () => {
    const es = new EventSource("/api/stream");
    es.addEventListener("open", () => state("live", true));
    es.addEventListener("memory", (e) => timeline.live(JSON.parse(e.data)));
    es.addEventListener("forget", (e) => {
      const f = JSON.parse(e.data);
      forgot(f.since ?? null, f.until ?? null);
    });
    es.addEventListener("match", (e) => announce(JSON.parse(e.data), show));
    es.addEventListener("error", () => {
      state("reconnecting…", false);
      if (es.readyState !== EventSource.CLOSED) return; // the browser retries by itself
      clearTimeout(retry);
      // refused for good (e.g. 401): ask why with a plain request, which shows the token banner on 401
      get("ping").then(() => (retry = setTimeout(connect, 3000)), (err) => err.status !== 401 && (retry = setTimeout(connect, 5000)));
    });
  };
  connect();
}

/** A watch fired: a short note in the header; choosing it shows the moment. */
function announce(m, show) {
  const box = $("matches");
  const text = `watch “${m.watch}” · ${senseName(m.source, m.modality)} · ${when(m.ts)}`;
  const b = el("button", { type: "button", class: "match", text, title: "Show this moment", onclick: () => show(m, true) });
  box.replaceChildren(b); // the newest only: the header has room for one
  setTimeout(() => b.remove(), 30000);
}

main();
