// Talking to the daemon (the token, JSON requests) and the small helpers every part of the page shares:
// building DOM nodes from text only, local times, and what to call a stream ("cam0 · camera").

const TOKEN_KEY = "sensorium_token";
let token = null;
let refused = false; // the daemon answered 401: nothing more is asked until the page is opened again
let onUnauthorized = () => {};

/** The token from #token=… (then kept and wiped from the URL) or from an earlier visit; null when none. */
export function takeToken() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m && m[1]) {
    token = decodeURIComponent(m[1]);
    try {
      localStorage.setItem(TOKEN_KEY, token);
    } catch {
      // storage refused (private mode): the token still works for this visit
    }
    history.replaceState(null, "", location.pathname + location.search);
  } else {
    try {
      token = localStorage.getItem(TOKEN_KEY);
    } catch {
      token = null;
    }
  }
  if (token) {
    // <img src="/thumbs/…"> and EventSource cannot send a header: GETs may carry the token as a cookie
    document.cookie = "sensorium_token=" + token + "; path=/; SameSite=Strict";
  }
  return token;
}

export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(url, init) {
  if (refused) throw new ApiError(401, "the daemon refused the token");
  let res;
  try {
    res = await fetch(url, {
      ...init,
      credentials: "same-origin",
      headers: { ...(init.headers || {}), "X-Sensorium-Token": token || "" },
    });
  } catch {
    throw new ApiError(0, "the daemon is not answering");
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (res.status === 401) {
    refused = true;
    onUnauthorized();
    throw new ApiError(401, (data && data.error) || "the daemon refused the token");
  }
  if (!res.ok || !data || data.ok === false) {
    throw new ApiError(res.status, (data && data.error) || `HTTP ${res.status}`);
  }
  return data;
}

/** GET /api/<op>?key=value (null and undefined values left out). */
export function get(op, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined) q.set(k, String(v));
  }
  const s = q.toString();
  return call(`/api/${op}${s ? "?" + s : ""}`, { method: "GET" });
}

/** POST /api/<op> with a JSON body. */
export function post(op, body = {}) {
  return call(`/api/${op}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

// ---- DOM: text goes in as text, never as markup ----------------------------------------------------

/** An element: `props` sets className, text, dataset, style (an object), attributes and on<event> listeners;
 *  children are nodes or strings (as text nodes). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "data") Object.assign(node.dataset, v);
    else if (k === "style") Object.assign(node.style, v); // CSSOM, not a style attribute: fine under a strict CSP
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Text with the words a search matched ("[invoice]") as <mark>; other brackets ("[redacted:card]") stay. */
export function marked(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(/\[([^\[\]\s:]+)\]/g)) {
    out.push(text.slice(last, m.index), el("mark", { text: m[1] }));
    last = m.index + m[0].length;
  }
  out.push(text.slice(last));
  return out.filter((x) => x !== "");
}

// ---- time ---------------------------------------------------------------------------------------

const pad = (n, w = 2) => String(n).padStart(w, "0");

export function clock(ts, seconds = true) {
  const d = new Date(ts * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}` + (seconds ? `:${pad(d.getSeconds())}` : "");
}

export function day(ts) {
  const d = new Date(ts * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Clock time, with the date in front when it is not today. */
export function when(ts) {
  return day(ts) === day(Date.now() / 1000) ? clock(ts) : `${day(ts)} ${clock(ts)}`;
}

/** A datetime-local input's value for unix seconds (local time, to the second). */
export function toInput(ts) {
  return `${day(ts)}T${clock(ts)}`;
}

/** Unix seconds from a datetime-local value (read as local time); null when empty or not a time. */
export function fromInput(value) {
  if (!value) return null;
  const t = new Date(value).getTime();
  return Number.isFinite(t) ? t / 1000 : null;
}

export function signed(seconds) {
  const a = Math.abs(seconds);
  const body = a < 60 ? `${a.toFixed(1)} s` : a < 3600 ? `${(a / 60).toFixed(1)} min` : `${(a / 3600).toFixed(1)} h`;
  return (seconds >= 0 ? "+" : "−") + body;
}

export function duration(seconds) {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${+(seconds / 3600).toFixed(1)} h`;
  return `${+(seconds / 86400).toFixed(1)} d`;
}

// ---- streams and senses -------------------------------------------------------------------------

const kinds = new Map(); // source name → "screen" | "camera" | "microphone"

/** Learn each source's kind from the status: counters only that kind of source has (agent/status.py extras). */
export function learnKinds(sources) {
  for (const [name, s] of Object.entries(sources || {})) {
    const kind =
      "samples_in" in s || "overflows" in s
        ? "microphone"
        : "grabbed" in s || "reconnects" in s
          ? "camera"
          : "excluded" in s || "masked" in s
            ? "screen"
            : guessKind(name);
    if (kind) kinds.set(name, kind);
  }
}

function guessKind(name) {
  const base = name.slice(name.lastIndexOf(".") + 1);
  if (/^(screen|display|monitor)/i.test(base)) return "screen";
  if (/^(cam|webcam|video)/i.test(base)) return "camera";
  if (/^(mic|audio)/i.test(base)) return "microphone";
  return "";
}

export function kindOf(source) {
  return kinds.get(source) || guessKind(source);
}

/** The timeline's lane of a memory (the stream the timeline op names): its source, "<source>#text" for its words;
 * moments' source is "all" (or "<agent>.all"). */
export function laneOf(m) {
  return m.modality === "text" ? `${m.source}#text` : m.source;
}

/** What a person calls a stream: "screen0 · screen text", "mic0 · speech", "moments". */
export function senseName(source, modality) {
  if (modality === "moment") return "moments";
  const kind = kindOf(source);
  let sense = modality;
  if (modality === "image") sense = kind === "camera" ? "camera" : kind === "screen" ? "screen" : "image";
  else if (modality === "audio") sense = "sound";
  else if (modality === "text") sense = kind === "microphone" ? "speech" : kind === "camera" ? "camera text" : "screen text";
  return `${source} · ${sense}`;
}

/** A memory in a few words: its text, its labels, or for a moment the senses it fused. */
export function gist(m) {
  if (m.text) return m.text.replace(/\s+/g, " ").trim();
  if (m.labels && m.labels.length) return m.labels.slice(0, 3).join(", ");
  const senses = m.modality === "moment" && m.extra && m.extra.senses;
  if (senses) return "of " + String(senses).replace(/,/g, ", ");
  return m.modality === "moment" ? "moment" : "";
}
