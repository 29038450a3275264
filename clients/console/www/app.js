// app.js - the casenet console's pages (a JavaScript module, no build step):
// login, inbox, message, new referral, sent, notices, ledger. Every string
// comes from i18n/<lang>.json. Everything a sender wrote is put on the page
// as text (textContent, via el()), never as HTML; URLs are shown, never
// fetched or linked.
import { referralForm, takedownForm, collectForm, keepDraft, markServerError } from "./form.js";
import { COORD_PAGES, coordPage, coordEvent } from "./coord.js";
import { attachmentList, uploadAttachments, attachRefusal } from "./attach.js";
import { bankPage, bankEvent } from "./bank.js";

const S = { lang: "vi", cat: {}, session: null, es: null, unseen: 0, dir: null };

// ---------------------------------------------------------------- helpers

export function t(key, vars) {
  let s = Object.prototype.hasOwnProperty.call(S.cat, key) ? S.cat[key] : key;
  for (const [k, v] of Object.entries(vars || {})) s = s.split("{" + k + "}").join(String(v));
  return s;
}

// el("tag", {attrs}, children...): children are nodes or strings (text).
export function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

export async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (method !== "GET" && S.session) opts.headers["X-CSRF-Token"] = S.session.csrf;
  let res;
  try {
    res = await fetch("/api/v1" + path, opts);
  } catch (e) {
    return { ok: false, status: 0, data: { error: "UNAVAILABLE", message: String(e) } };
  }
  let data = {};
  try { data = await res.json(); } catch (e) { data = {}; }
  if (res.status === 401 && path !== "/session") {
    S.session = null;
    showLogin(t("login.expired"));
  }
  return { ok: res.ok, status: res.status, data, retry: res.headers.get("Retry-After") };
}

export function errorText(r) {
  if (r.status === 0 || r.status === 503) return t("err.unavailable");
  if (r.data && r.data.field) return t("err.field", { f: fieldLabel(r.data.field), m: r.data.message || "" });
  if (r.status === 403) return t("err.forbidden");
  return t("err.generic", { m: (r.data && r.data.message) || r.status });
}

function fieldLabel(path) {
  const last = String(path).split(".").pop().replace(/\[\d+\]$/, "");
  const k = "f." + last;
  return Object.prototype.hasOwnProperty.call(S.cat, k) ? t(k) : last;
}

const pad = (n) => String(n).padStart(2, "0");
// dd/mm/yyyy HH:mm (GMT+7) in the browser's local time.
export function when(ms) {
  if (!ms) return "–";
  const d = new Date(Number(ms));
  const off = -d.getTimezoneOffset();
  const zone = "GMT" + (off >= 0 ? "+" : "-") + Math.floor(Math.abs(off) / 60) +
    (Math.abs(off) % 60 ? ":" + pad(Math.abs(off) % 60) : "");
  return `${pad(d.getDate())}/${pad(d.getMonth() + 1)}/${d.getFullYear()} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())} (${zone})`;
}

function countdown(ms) {
  const left = Number(ms) - Date.now();
  const m = Math.round(Math.abs(left) / 60000);
  const txt = m >= 120 ? Math.round(m / 60) + (S.lang === "vi" ? " giờ" : " h") : m + (S.lang === "vi" ? " phút" : " min");
  return left >= 0 ? (S.lang === "vi" ? "còn " : "in ") + txt : (S.lang === "vi" ? "quá " : "overdue by ") + txt;
}

function randomId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// The first deadline still pending (or breached) of a row, as a countdown.
function nextDeadline(ds) {
  const open = (ds || []).filter((d) => d.kind !== "expire" && (d.state === "pending" || d.state === "breached"))
    .sort((a, b) => a.due_at - b.due_at)[0];
  if (!open) return "";
  const late = open.state === "breached" || open.due_at < Date.now();
  return [t("deadline." + open.kind) + ": ", badge(late ? "overdue" : "", countdown(open.due_at))];
}

export function badge(cls, text) { return el("span", { class: "badge " + cls }, text); }
function enumName(v, prefix) { return String(v || "").replace(prefix, ""); }
export function urgencyBadge(u) { return badge(u, t("urgency." + u)); }
function stateBadge(s) { return badge(s, t("state." + s)); }

export function setMain(...kids) {
  const m = document.getElementById("main");
  m.replaceChildren(...kids.flat(2).filter((k) => k !== null && k !== undefined && k !== false));
  return m;
}

export function setTitle(key) {
  const base = t(key) + " — casenet";
  document.title = S.unseen ? `(${S.unseen}) ${base}` : base;  // never a case detail
  S.titleKey = key;
}

async function loadLang(lang) {
  const r = await fetch(`/i18n/${lang}.json`, { cache: "no-store" });
  S.cat = await r.json();
  S.lang = lang;
  document.documentElement.lang = lang;
  try { localStorage.setItem("casenet.lang", lang); } catch (e) { /* private mode */ }
}

async function directory() {
  if (!S.dir) {
    const r = await api("GET", "/directory");
    if (r.ok) S.dir = r.data;
  }
  return S.dir;
}

// ---------------------------------------------------------------- chrome

function chrome() {
  const top = document.getElementById("top");
  top.hidden = !S.session;
  document.getElementById("skip-link").textContent = t("skip");
  if (!S.session) return;
  document.getElementById("member-name").textContent = S.session.member_name;
  document.getElementById("who").textContent =
    `${S.session.user} (${t("role." + S.session.role)})`;
  const nav = document.getElementById("nav");
  const links = [["#/inbox", "nav.inbox"], ["#/new", "nav.new"], ["#/takedown", "nav.takedown"], ["#/sent", "nav.sent"],
    ["#/notices", "nav.notices"]];
  if (S.session.role === "supervisor") links.push(["#/ledger", "nav.ledger"]);
  if (S.session.coordinator) for (const p of COORD_PAGES) links.push(["#/" + p, "nav." + p]);
  if (S.session.bank) links.push(["#/bank", "nav.bank"]);
  const here = location.hash.split("/").slice(0, 2).join("/");
  nav.replaceChildren(...links.map(([h, k]) =>
    el("a", { href: h, "aria-current": here === h ? "page" : null, id: "nav-" + h.slice(2) }, t(k))));
  document.getElementById("lang").textContent = t("lang.switch");
  document.getElementById("logout").textContent = t("logout");
}

function connState(up) {
  const c = document.getElementById("conn");
  c.replaceChildren(badge(up ? "ok" : "bad", t(up ? "conn.up" : "conn.down")));
}

function startEvents() {
  if (S.es) S.es.close();
  const es = new EventSource("/api/v1/events");
  S.es = es;
  es.addEventListener("broker", (ev) => connState(JSON.parse(ev.data).up));
  es.addEventListener("open", () => connState(true));
  es.addEventListener("error", () => {
    connState(false);
    // a stream the server refused (session ended): ask, and show the login
    if (es.readyState === EventSource.CLOSED) api("GET", "/session");
  });
  es.addEventListener("resync", () => refreshLive());
  es.addEventListener("notice", (ev) => {
    const n = JSON.parse(ev.data);
    if (n.type === "broker") return connState(n.up);
    if (coordEvent(n)) return;
    if (bankEvent(n)) return;
    if (n.type === "inbox" && n.kind !== "receipt" && !location.hash.startsWith("#/inbox")) S.unseen++;
    if (n.type === "inbox" && n.urgency === "emergency" && n.kind === "referral") beep();
    refreshLive();
  });
}

// A short tone for a new emergency (no file to fetch; silent where the
// browser does not allow sound yet).
function beep() {
  try {
    const ctx = S.audio || (S.audio = new AudioContext());
    const o = ctx.createOscillator(), g = ctx.createGain();
    o.frequency.value = 880;
    g.gain.value = 0.1;
    o.connect(g).connect(ctx.destination);
    o.start();
    o.stop(ctx.currentTime + 0.25);
  } catch (e) { /* no audio */ }
}

// The screen locks after the session's idle timeout: the page drops what it
// shows and asks for the password again.
function watchIdle() {
  let last = Date.now();
  for (const ev of ["keydown", "mousedown", "touchstart"]) document.addEventListener(ev, () => { last = Date.now(); }, true);
  setInterval(async () => {
    if (!S.session || Date.now() - last < S.session.idle_timeout_s * 1000) return;
    await api("DELETE", "/session");
    try { sessionStorage.clear(); } catch (e) { /* ignore */ }
    S.session = null;
    showLogin(t("login.expired"));
  }, 15000);
}

function refreshLive() {
  if (S.titleKey) setTitle(S.titleKey);
  const h = location.hash || "#/inbox";
  if (h.startsWith("#/inbox") || h.startsWith("#/sent") || h.startsWith("#/notices")) route();
}

// ---------------------------------------------------------------- login

function showLogin(msg) {
  if (S.es) { S.es.close(); S.es = null; }
  chrome();
  setTitle("login.title");
  const err = el("p", { class: "error", id: "login-error", role: "alert" }, msg || "");
  const user = el("input", { type: "text", id: "username", name: "username", autocomplete: "username", required: true });
  const pw = el("input", { type: "password", id: "password", name: "password", autocomplete: "current-password", required: true });
  const form = el("form", { class: "login", id: "login-form" },
    el("h1", {}, t("login.title")),
    el("div", { class: "field" }, el("label", { for: "username" }, t("login.user")), user),
    el("div", { class: "field" }, el("label", { for: "password" }, t("login.password")), pw),
    err,
    el("button", { type: "submit", id: "login-submit" }, t("login.submit")),
    el("p", {}, el("button", { type: "button", class: "secondary", id: "login-lang", onclick: async () => { await loadLang(S.lang === "vi" ? "en" : "vi"); showLogin(); } }, t("lang.switch"))));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("POST", "/session", { username: user.value.trim(), password: pw.value });
    pw.value = "";
    if (r.ok) {
      S.session = r.data;
      startEvents();
      if (!location.hash || location.hash === "#/login") location.hash = "#/inbox";
      else route();
    } else if (r.status === 429) {
      err.textContent = t("login.limited", { s: r.retry || "300" });
    } else if (r.status === 401) {
      err.textContent = t("login.wrong");
    } else {
      err.textContent = errorText(r);
    }
  });
  setMain(form);
  user.focus();
}

// ---------------------------------------------------------------- inbox

const INBOX_STATES = ["queued", "fetched", "delivered", "accepted", "declined", "completed", "dead"];
const KINDS = ["referral", "status", "info-request", "info-response", "takedown-request",
  "takedown-result", "correction", "withdraw", "erase", "escalation", "dead-letter", "receipt"];
const URGENCIES = ["emergency", "urgent-takedown", "standard", "info"];
// a completed receipt's outcome codes (PROTOCOL.md section 5.1)
const OUTCOMES = ["resolved", "referred-onward", "no-action-needed", "unable-to-act", "withdrawn"];
// the states a status update on its own may state (declining and closing
// go with a receipt, which gives them their reason and outcome)
const NOTE_STATES = ["ACCEPTED", "ASSESSMENT_DONE", "MEASURE_APPLIED"];
const DECLINE_REASONS = ["not-competent", "duplicate", "insufficient-information", "redirected"];

function select(id, label, values, prefix, current) {
  return el("div", {},
    el("label", { for: id }, label),
    el("select", { id, name: id },
      el("option", { value: "" }, t("filter.all")),
      values.map((v) => el("option", { value: v, selected: v === current }, t(prefix + v)))));
}

async function inboxPage(params, opts) {
  const notices = opts && opts.notices;
  setTitle(notices ? "notices.title" : "inbox.title");
  if (!notices) { S.unseen = 0; setTitle("inbox.title"); }
  const q = new URLSearchParams(params || "");
  const offset = Number(q.get("offset") || 0), limit = 50;
  const api_q = new URLSearchParams();
  for (const k of ["state", "kind", "urgency", "case"]) if (q.get(k)) api_q.set(k, q.get(k));
  if (notices && !q.get("kind")) api_q.set("kind", "escalation,dead-letter");
  api_q.set("limit", limit);
  api_q.set("offset", offset);
  const r = await api("GET", "/inbox?" + api_q);
  const head = el("h1", {}, t(notices ? "notices.title" : "inbox.title"));
  if (!r.ok) return setMain(head, el("p", { class: "notice bad", role: "alert" }, errorText(r)));
  const filters = el("form", { class: "filters", id: "filters" },
    select("f-state", t("filter.state"), INBOX_STATES, "state.", q.get("state")),
    notices ? null : select("f-kind", t("filter.kind"), KINDS, "kind.", q.get("kind")),
    select("f-urgency", t("filter.urgency"), URGENCIES, "urgency.", q.get("urgency")),
    el("div", {}, el("label", { for: "f-case" }, t("filter.case")),
      el("input", { type: "text", id: "f-case", value: q.get("case") || "", size: 34 })),
    el("button", { type: "submit" }, t("filter.apply")));
  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const n = new URLSearchParams();
    const v = (id) => (document.getElementById(id) || {}).value;
    if (v("f-state")) n.set("state", v("f-state"));
    if (v("f-kind")) n.set("kind", v("f-kind"));
    if (v("f-urgency")) n.set("urgency", v("f-urgency"));
    if (v("f-case")) n.set("case", v("f-case").trim());
    location.hash = (notices ? "#/notices?" : "#/inbox?") + n;
  });
  const rows = r.data.rows.map((m) => {
    // a receipt opens the message it is about, in the sent view
    const open = () => {
      if (m.kind !== "receipt") location.hash = "#/message/" + m.id;
      else if (m.receipt && m.receipt.message_id) location.hash = "#/sent/" + m.receipt.message_id;
    };
    const what = m.kind === "receipt" && m.receipt
      ? [t("kind.receipt") + ": ", stateBadge(m.receipt.status || "delivered"),
        " ", badge(m.receipt.verified ? "ok" : "bad", t(m.receipt.verified ? "receipt.verified" : "receipt.bad"))]
      : [t("kind." + m.kind)];
    return el("tr", { class: "row", tabindex: 0, "data-id": m.id, onclick: open,
      onkeydown: (ev) => { if (ev.key === "Enter") open(); } },
      el("td", {}, urgencyBadge(m.urgency)),
      el("td", {}, what),
      el("td", {}, m.from_name),
      el("td", {}, stateBadge(m.state)),
      el("td", { class: "deadline" }, nextDeadline(m.deadlines)),
      el("td", {}, when(m.received_at)),
      el("td", { class: "muted" }, m.case ? m.case.slice(0, 8) : ""));
  });
  const table = rows.length
    ? el("table", { id: "inbox-table" },
      el("thead", {}, el("tr", {}, ["col.urgency", "col.kind", "col.from", "col.state", "col.deadline", "col.received", "col.case"]
        .map((k) => el("th", { scope: "col" }, t(k))))),
      el("tbody", {}, rows))
    : el("p", { id: "inbox-empty" }, t("inbox.empty"));
  const total = r.data.total;
  const go = (o) => { q.set("offset", o); location.hash = (notices ? "#/notices?" : "#/inbox?") + q; };
  const pager = el("div", { class: "actions" },
    el("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) }, t("page.prev")),
    el("span", {}, t("page.of", { a: total ? offset + 1 : 0, b: Math.min(total, offset + limit), n: total })),
    el("button", { type: "button", class: "secondary", disabled: offset + limit >= total, onclick: () => go(offset + limit) }, t("page.next")));
  setMain(head, filters, table, pager);
}

// ---------------------------------------------------------------- message

// Renders a payload value as a definition list; labels from the catalogue,
// enum values translated, *Ms times formatted, everything else as text.
function renderValue(key, v, path) {
  if (Array.isArray(v) && key === "recipients") return el("ul", {}, v.map((x) => el("li", {}, memberName(x))));
  if (Array.isArray(v)) {
    if (key === "harmCategories") return el("ul", {}, v.map((x) => el("li", {}, t("harm." + enumName(x, "HARM_CATEGORY_")))));
    return el("ul", {}, v.map((x, i) => el("li", {}, typeof x === "object" ? renderObject(x, `${path || key}[${i}]`) : String(x))));
  }
  if (v && typeof v === "object") return renderObject(v, path || key);
  if (/Ms$/.test(key)) return when(v);
  if (key === "intakeChannel") return t("channel." + enumName(v, "INTAKE_CHANNEL_"));
  if (key === "sex") return t("sex." + enumName(v, "SEX_"));
  if (key === "urgency") return t("urgency." + enumName(v, "URGENCY_").toLowerCase().replace("_", "-"));
  if (key === "kind" && String(v).startsWith("LEGAL_BASIS_KIND_")) return t("legal." + enumName(v, "LEGAL_BASIS_KIND_"));
  if (key === "reason" && String(v).startsWith("NOTICE_REASON_")) return t("notice." + enumName(v, "NOTICE_REASON_"));
  if (key === "messageId") return b64hex(v);
  if (key === "outcome" && OUTCOMES.includes(v)) return t("outcome." + v);
  if (key === "reason" && DECLINE_REASONS.includes(v)) return t("reason." + v);
  if (String(v).startsWith("CASE_STATUS_")) return t("casestatus." + enumName(v, "CASE_STATUS_"));
  if (String(v).startsWith("TAKEDOWN_OUTCOME_")) return t("tdoutcome." + enumName(v, "TAKEDOWN_OUTCOME_"));
  if (key === "category" && String(v).startsWith("HARM_CATEGORY_")) return t("harm." + enumName(v, "HARM_CATEGORY_"));
  if (key === "messageStatus") return t("mstatus." + enumName(v, "MESSAGE_STATUS_").toLowerCase());
  if (key === "sender" || key === "recipient" || key === "recipients") return memberName(v);
  if (typeof v === "boolean") return t(v ? "yes" : "no");
  return String(v);
}

// The heading of a payload's oneof field: "takedownRequest" -> kind.takedown-request.
function payloadTitle(k) {
  const key = k === "notice" ? "nav.notices" : "kind." + k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
  return Object.prototype.hasOwnProperty.call(S.cat, key) ? t(key) : k;
}

// A member's display name from the verified directory, with its id.
export function memberName(id) {
  const m = S.dir && S.dir.members.find((x) => x.id === id);
  return m && m.name !== id ? `${m.name} (${id})` : String(id);
}

function b64hex(b64) {
  try { return Array.from(atob(String(b64)), (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join(""); }
  catch (e) { return String(b64); }
}

// Identifying fields are shown on request, each reveal written to the
// disclosure ledger first (POST /messages/{id}/reveal).
const SENSITIVE = new Set(["name", "birthDate", "phone", "email"]);

function revealButton(path, v) {
  const b = el("button", { type: "button", class: "secondary reveal", "data-reveal": path }, t("reveal.show"));
  b.addEventListener("click", async () => {
    const r = await api("POST", `/messages/${S.messageId}/reveal`, { field: path });
    if (r.ok) b.replaceWith(document.createTextNode(String(v)));
  });
  return b;
}

function renderObject(o, path) {
  return el("dl", { class: "case" }, Object.entries(o).flatMap(([k, v]) => {
    const p = path ? path + "." + k : k;
    const shown = SENSITIVE.has(k) && typeof v === "string" && S.messageId ? revealButton(p, v) : renderValue(k, v, p);
    return [el("dt", {}, fieldLabel(k)), el("dd", { "data-field": k }, shown)];
  }));
}

function timeline(recipients) {
  return recipients.map((rc) => el("section", {},
    el("h3", {}, rc.name, " ", stateBadge(rc.state)),
    el("ol", { class: "timeline" }, (rc.steps || []).map((s) => el("li", {},
      when(s.at), " — ", t("state." + s.state),
      s.receipt ? [" ", badge(s.receipt.verified ? "ok" : "bad", t(s.receipt.verified ? "receipt.verified" : "receipt.bad")),
        s.receipt.reason ? " " + t("reason." + s.receipt.reason) : "",
        s.receipt.outcome ? [" — ", el("span", { class: "outcome" }, t("outcome." + s.receipt.outcome))] : "",
        s.receipt.note_id ? [" — ", el("a", { href: "#/message/" + s.receipt.note_id, class: "note-link" }, t("receipt.note"))] : ""] : ""))),
    el("ul", {}, (rc.deadlines || []).map((d) => el("li", {},
      t("deadline." + d.kind), ": ", when(d.due_at), " — ", badge(d.state === "breached" ? "overdue" : d.state, t("dstate." + d.state)),
      d.state === "pending" ? " (" + countdown(d.due_at) + ")" : "")))));
}

async function messagePage(id) {
  setTitle("msg.title");
  await directory();
  const r = await api("GET", "/messages/" + encodeURIComponent(id));
  const back = el("button", { type: "button", class: "secondary", onclick: () => history.back() }, t("msg.back"));
  if (!r.ok) return setMain(back, el("p", { class: "notice bad", role: "alert" }, errorText(r)));
  const m = r.data;
  S.messageId = m.id;
  const status = el("p", { id: "action-status", role: "status", "aria-live": "polite" });
  const meta = el("dl", { class: "case", id: "meta" },
    el("dt", {}, t("msg.from")), el("dd", { id: "meta-from" }, m.from_name + " (" + m.from + ")"),
    el("dt", {}, t("msg.signature")), el("dd", {}, badge("ok", t("msg.sig.ok", { k: m.sign_key_id }))),
    el("dt", {}, t("col.kind")), el("dd", {}, t("kind." + m.kind), " ", urgencyBadge(m.urgency),
      m.message_status !== "actual" ? [" ", badge("bad", t("mstatus." + m.message_status))] : ""),
    el("dt", {}, t("msg.created")), el("dd", {}, when(m.created_at)),
    el("dt", {}, t("msg.recipients")), el("dd", {}, m.recipients.map((x) => x.name).join(", ")),
    m.case ? [el("dt", {}, t("col.case")), el("dd", {}, m.case)] : null);
  const body = Object.entries(m.payload || {}).map(([k, v]) =>
    el("section", { id: "payload" }, el("h2", {}, payloadTitle(k)), renderObject(v, k)));
  // a receipt carries codes only; words go in the note, sealed to the
  // sender first as a STATUS note that the receipt names
  const note = el("textarea", { id: "note", maxlength: 4000, "aria-describedby": "note-help" });
  const act = async (status_, extra) => {
    const body = Object.assign({ status: status_ }, extra || {});
    const words = note.value.trim().normalize("NFC");
    if (words && status_ !== "delivered") body.note = words;
    const r2 = await api("POST", `/messages/${m.id}/receipts`, body);
    const done = r2.ok ? t("act.done", { s: t("state." + status_) }) +
      (r2.data.note_id ? " " + t("act.noteSent", { id: r2.data.note_id }) : "") : errorText(r2);
    status.textContent = done;
    status.className = r2.ok ? "notice" : "notice bad";
    if (r2.ok) setTimeout(() => messagePage(id).then(() => {
      const s2 = document.getElementById("action-status");
      if (s2) { s2.textContent = done; s2.className = "notice"; }
    }), 0);
  };
  const canAct = S.session.role !== "viewer" && !["escalation", "dead-letter"].includes(m.kind);
  const reason = el("select", { id: "decline-reason" },
    DECLINE_REASONS.map((x) => el("option", { value: x }, t("reason." + x))));
  const outcome = el("select", { id: "outcome" }, OUTCOMES.map((x) => el("option", { value: x }, t("outcome." + x))));
  const actions = canAct ? el("div", { class: "actions", id: "actions" },
    el("button", { type: "button", id: "act-delivered", class: "secondary", onclick: () => act("delivered") }, t("act.delivered")),
    el("button", { type: "button", id: "act-accepted", onclick: () => act("accepted") }, t("act.accepted")),
    el("div", {}, el("label", { for: "decline-reason" }, t("act.reason")), reason),
    el("button", { type: "button", id: "act-declined", class: "danger", onclick: () => act("declined", { reason: reason.value }) }, t("act.declined")),
    el("div", {}, el("label", { for: "outcome" }, t("act.outcome")), outcome),
    el("button", { type: "button", id: "act-completed", class: "secondary", onclick: () => act("completed", { outcome: outcome.value }) }, t("act.completed")),
    el("button", { type: "button", class: "secondary", onclick: () => window.print() }, t("msg.print"))) : null;
  // a status update on its own, in reply: the case id and a status, as a
  // StatusNote requires (PROTOCOL.md section 6)
  const caseId = Object.values(m.payload || {}).map((p) => p && p.caseId).find(Boolean);
  const noteStatus = el("select", { id: "note-status" },
    NOTE_STATES.map((x) => el("option", { value: x }, t("casestatus." + x))));
  const sendNote = async () => {
    if (!note.value.trim()) return note.focus();
    const r3 = await api("POST", "/messages", {
      kind: "status", to: [m.from], urgency: m.urgency, reply_to: m.id, case: m.case,
      draft_id: noteDraft, payload: { status: { caseId: caseId || "", status: "CASE_STATUS_" + noteStatus.value,
        note: note.value.trim().normalize("NFC") } },
    });
    status.textContent = r3.ok ? t("act.noteSent", { id: r3.data.id }) : errorText(r3);
    status.className = r3.ok ? "notice" : "notice bad";
    if (r3.ok) { note.value = ""; noteDraft = randomId(); }
  };
  let noteDraft = randomId();
  const replyTo = (S.dir && S.dir.members.find((x) => x.id === m.from)) || {};
  const mayReply = caseId && (replyTo.may_send || []).includes("status");
  const noteBox = canAct ? el("div", { class: "field", id: "note-box" },
    el("label", { for: "note" }, t("act.note")), note,
    el("p", { id: "note-help", class: "muted" }, t("act.noteHelp")),
    mayReply ? el("div", { class: "actions" },
      el("label", { for: "note-status" }, t("act.noteStatus")), noteStatus,
      el("button", { type: "button", id: "send-note", class: "secondary", onclick: sendNote }, t("act.noteSend"))) : null) : null;
  const n = m.payload && m.payload.notice;
  const openSent = n && n.sender === S.session.member && n.messageId
    ? el("p", {}, el("a", { href: "#/sent/" + b64hex(n.messageId), id: "notice-open" }, t("notice.open"))) : null;
  const files = attachmentList({ t, el, errorText }, m.attachments, m.id);
  setMain(back, el("h1", {}, t("msg.title")), meta, files, status, actions, noteBox, openSent, ...body,
    m.recipients_status ? [el("h2", {}, t("msg.timeline")), ...timeline(m.recipients_status)] : null);
}

// ---------------------------------------------------------------- new referral

async function newPage(kind) {
  const title = kind === "takedown" ? "takedown.title" : "new.title";
  setTitle(title);
  const dir = await directory();
  const form = (kind === "takedown" ? takedownForm : referralForm)({ t, el, dir, self: S.session.member });
  const dropDraft = keepDraft(form);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = collectForm(form, t);
    const box = form.querySelector("#form-status");
    if (out.errors.length) {
      box.className = "notice bad";
      box.replaceChildren(...out.errors.map((e) => el("p", {}, el("a", { href: "#" + e.id, onclick: (x) => { x.preventDefault(); document.getElementById(e.id).focus(); } }, e.msg))));
      box.focus();
      return;
    }
    const btn = form.querySelector("#send");
    btn.disabled = true;
    btn.textContent = t("new.sending");
    const up = await uploadAttachments(form, api, t, (p) => { btn.textContent = p; });
    if (up.ok && up.ids.length) out.request.attachments = up.ids;
    const r = up.ok ? await api("POST", "/messages", out.request) : up.r;
    btn.disabled = false;
    btn.textContent = t("new.send");
    if (!r.ok) {
      attachRefusal(form, t, r.data);
      box.className = "notice bad";
      const ids = markServerError(form, r.data);
      box.replaceChildren(el("p", { role: "alert" }, ids.length
        ? el("a", { href: "#" + ids[0], onclick: (x) => { x.preventDefault(); document.getElementById(ids[0]).focus(); } }, errorText(r))
        : errorText(r)));
      box.focus();
      return;
    }
    form.hidden = true;
    dropDraft();
    const done = el("div", { class: "notice", id: "sent-receipt", role: "status", tabindex: -1 },
      el("p", {}, t("new.sent", { id: r.data.id, t: when(r.data.receipt.accepted_at), n: r.data.receipt.audit_index })),
      el("button", { type: "button", onclick: () => newPage(kind) }, t("new.again")));
    setMain(el("h1", {}, t(title)), done);
    done.focus();
  });
  setMain(el("h1", {}, t(title)), form);
  const first = form.querySelector("input[name=urgency]:checked") || form.querySelector("input");
  if (first) first.focus();
}

// ---------------------------------------------------------------- sent

async function sentPage() {
  setTitle("sent.title");
  const r = await api("GET", "/sent");
  const head = el("h1", {}, t("sent.title"));
  if (!r.ok) return setMain(head, el("p", { class: "notice bad", role: "alert" }, errorText(r)));
  const rows = r.data.rows.map((m) => {
    const open = () => { location.hash = "#/sent/" + m.id; };
    return el("tr", { class: "row", tabindex: 0, "data-id": m.id, onclick: open, onkeydown: (ev) => { if (ev.key === "Enter") open(); } },
      el("td", {}, when(m.created_at)),
      el("td", {}, t("kind." + m.kind), " ", urgencyBadge(m.urgency)),
      el("td", {}, m.recipients.map((rc) => el("div", { "data-recipient": rc.id }, rc.name, ": ", stateBadge(rc.state)))),
      el("td", {}, m.overdue ? badge("overdue", t("sent.overdue")) : "",
        m.broker_receipt_verified ? badge("ok", t("sent.broker")) : badge("bad", t("receipt.bad"))));
  });
  setMain(head, rows.length ? el("table", { id: "sent-table" },
    el("thead", {}, el("tr", {}, ["col.created", "col.kind", "col.recipients", "col.deadline"].map((k) => el("th", { scope: "col" }, t(k))))),
    el("tbody", {}, rows)) : el("p", {}, t("inbox.empty")));
}

async function sentDetail(id) {
  setTitle("sent.title");
  const r = await api("GET", `/messages/${encodeURIComponent(id)}/status`);
  const back = el("button", { type: "button", class: "secondary", onclick: () => history.back() }, t("msg.back"));
  if (!r.ok) return setMain(back, el("p", { class: "notice bad", role: "alert" }, errorText(r)));
  const m = r.data;
  setMain(back, el("h1", {}, t("kind." + m.kind), " ", urgencyBadge(m.urgency)),
    el("p", {}, when(m.created_at), " ", m.broker_receipt_verified ? badge("ok", t("sent.broker")) : badge("bad", t("receipt.bad"))),
    el("div", { id: "status-detail" }, timeline(m.recipients)),
    attachmentList({ t, el, errorText }, m.attachments, null));
}

// ---------------------------------------------------------------- ledger

async function ledgerPage() {
  setTitle("ledger.title");
  const r = await api("GET", "/ledger");
  const head = el("h1", {}, t("ledger.title"));
  if (!r.ok) return setMain(head, el("p", { class: "notice bad" }, errorText(r)));
  setMain(head, el("table", { id: "ledger-table" },
    el("thead", {}, el("tr", {}, ["ledger.at", "ledger.user", "ledger.action", "f.messageId", "col.case"].map((k) => el("th", { scope: "col" }, t(k))))),
    el("tbody", {}, r.data.rows.map((x) => el("tr", {}, el("td", {}, when(x.at)), el("td", {}, x.user),
      el("td", {}, x.action), el("td", {}, x.message_id || ""), el("td", {}, x.case || ""))))));
}

// ---------------------------------------------------------------- routing

async function route() {
  if (!S.session) return showLogin();
  chrome();
  const h = location.hash || "#/inbox";
  const [path, params] = h.slice(1).split("?");
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "message" && parts[1]) return messagePage(parts[1]);
  if (parts[0] === "new") return newPage("referral");
  if (parts[0] === "takedown") return newPage("takedown");
  if (parts[0] === "sent" && parts[1]) return sentDetail(parts[1]);
  if (parts[0] === "sent") return sentPage();
  if (parts[0] === "notices") return inboxPage(params, { notices: true });
  if (parts[0] === "ledger") return ledgerPage();
  if (S.session.coordinator && COORD_PAGES.includes(parts[0])) return coordPage(parts[0], params);
  if (S.session.bank && parts[0] === "bank") return bankPage(params);
  return inboxPage(params);
}

async function main() {
  let lang = "vi";
  try { lang = localStorage.getItem("casenet.lang") || "vi"; } catch (e) { /* ignore */ }
  await loadLang(lang === "en" ? "en" : "vi");
  document.getElementById("lang").addEventListener("click", async () => {
    await loadLang(S.lang === "vi" ? "en" : "vi");
    route();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await api("DELETE", "/session");
    try { sessionStorage.clear(); } catch (e) { /* ignore */ }
    S.session = null;
    showLogin();
  });
  window.addEventListener("hashchange", route);
  watchIdle();
  // Alt+N: a new (emergency) referral from anywhere, keyboard only
  document.addEventListener("keydown", (ev) => {
    if (ev.altKey && (ev.key === "n" || ev.key === "N") && S.session) {
      ev.preventDefault();
      location.hash = "#/new";
    }
  });
  const r = await fetch("/api/v1/session", { credentials: "same-origin", cache: "no-store" });
  if (r.ok) {
    S.session = await r.json();
    startEvents();
  }
  route();
}

main();
