// bank.js - the hash-bank page ("Ngân hàng mã băm"), shown only when the
// session says the home's member holds a bank (the API refuses the others):
// counts by category and by source, the last update, and for caseworkers and
// supervisors the recent matches and the feedback received and sent, paged.
// Source names, references, labels and feedback notes come from other
// members: they go on the page as text only (el(), textContent).
import { api, el, errorText, setMain, setTitle, t, when } from "./app.js";

const CATS = ["baseline", "nationally_illegal", "not_illegal"];
const LISTS = [
  // [API key, query parameter, table id, heading key]
  ["matches", "m", "bank-matches", "bank.matches"],
  ["feedback_received", "r", "bank-feedback-received", "bank.received"],
  ["feedback_sent", "s", "bank-feedback-sent", "bank.sent"],
];

function table(id, cols, rows, caption) {
  return el("table", { id },
    caption ? el("caption", {}, caption) : null,
    el("thead", {}, el("tr", {}, cols.map((k) => el("th", { scope: "col" }, t(k))))),
    el("tbody", {}, rows));
}

function catName(c) { return t("bank.cat." + String(c).replace(/-/g, "_")); }

function signal(x) {
  return el("code", {}, x.signal_type + ":" + x.value);
}

function totalsTable(tt) {
  const rows = CATS.map((c) => el("tr", { "data-category": c }, el("th", { scope: "row" }, catName(c)),
    el("td", {}, String(tt[c]))));
  rows.push(el("tr", { "data-category": "live" }, el("th", { scope: "row" }, t("bank.live")), el("td", {}, String(tt.live))));
  rows.push(el("tr", { "data-category": "retracted" }, el("th", { scope: "row" }, t("bank.retracted")), el("td", {}, String(tt.retracted))));
  return table("bank-totals", ["bank.category", "bank.entries"], rows, t("bank.by_category"));
}

function sourcesTable(sources) {
  if (!sources.length) return el("p", { id: "bank-no-sources" }, t("bank.empty"));
  const rows = sources.map((s) => el("tr", { "data-source": s.source },
    el("td", {}, s.name, s.name !== s.source ? el("div", { class: "muted" }, s.source) : null,
      s.list ? el("div", { class: "muted" }, t("bank.list")) : null),
    el("td", {}, String(s.live)),
    CATS.map((c) => el("td", {}, String(s[c]))),
    el("td", {}, String(s.retracted)),
    el("td", {}, s.last_update ? when(s.last_update) : "–")));
  return table("bank-sources", ["bank.source", "bank.live", ...CATS.map((c) => "bank.cat." + c),
    "bank.retracted", "bank.last_update"], rows, t("bank.by_source"));
}

function listRows(key, rows) {
  if (key === "matches") {
    return rows.map((x) => el("tr", {}, el("td", {}, when(x.at)), el("td", {}, signal(x)),
      el("td", {}, catName(x.category)), el("td", {}, x.name),
      el("td", {}, x.signal_type === "pdq" ? String(x.distance) : "–"),
      el("td", { class: "label" }, x.label || "–")));
  }
  return rows.map((x) => el("tr", { class: "feedback-row" }, el("td", {}, when(x.at)),
    el("td", {}, x.name), el("td", {}, t(x.kind === "match" ? "bank.fb_match" : "bank.fb_fp")),
    el("td", {}, signal(x)), el("td", {}, x.kind === "match" ? String(x.match_count) : "–"),
    el("td", { class: "note" }, x.note || "")));
}

const COLS = {
  matches: ["bank.at", "bank.signal", "bank.category", "bank.source", "bank.distance", "bank.label"],
  feedback_received: ["bank.at", "bank.from", "bank.kind", "bank.signal", "bank.count", "bank.note"],
  feedback_sent: ["bank.at", "bank.to", "bank.kind", "bank.signal", "bank.count", "bank.note"],
};

function listSection(d, q, [key, param, id, head]) {
  const p = d[key], limit = d.limit, offset = p.offset;
  const go = (o) => { q.set(param, String(o)); location.hash = "#/bank?" + q; };
  return el("section", { class: "figure" }, el("h2", {}, t(head)),
    p.rows.length ? table(id, COLS[key], listRows(key, p.rows)) : el("p", { id: id + "-empty" }, t("bank.none")),
    p.total > limit ? el("div", { class: "actions" },
      el("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) }, t("page.prev")),
      el("span", {}, t("page.of", { a: p.total ? offset + 1 : 0, b: Math.min(p.total, offset + limit), n: p.total })),
      el("button", { type: "button", class: "secondary", disabled: offset + limit >= p.total, onclick: () => go(offset + limit) }, t("page.next"))) : null);
}

export async function bankPage(params) {
  setTitle("nav.bank");
  const q = new URLSearchParams(params || "");
  const aq = new URLSearchParams();
  for (const [, param] of LISTS) if (/^\d+$/.test(q.get(param) || "")) aq.set({ m: "matches_offset", r: "received_offset", s: "sent_offset" }[param], q.get(param));
  const r = await api("GET", "/bank" + (aq.toString() ? "?" + aq : ""));
  const head = el("h1", {}, t("nav.bank"));
  if (!r.ok) return setMain(head, el("p", { class: "notice bad", role: "alert" }, errorText(r)));
  const d = r.data, tt = d.totals;
  setMain(head,
    el("p", { id: "bank-updated" }, t("bank.updated", { at: tt.last_update ? when(tt.last_update) : t("bank.never") }),
      " ", el("span", { class: "muted" }, t("bank.messages", { n: tt.messages, m: tt.matches_reported, f: tt.false_positives }))),
    el("section", { class: "figure" }, totalsTable(tt)),
    el("section", { class: "figure" }, sourcesTable(d.sources)),
    d.detail ? LISTS.map((l) => listSection(d, q, l))
      : el("p", { class: "notice", id: "bank-viewer" }, t("bank.viewer")));
}

// A pushed event: the console imported a hash share; redraw the open page.
export function bankEvent(n) {
  if (n.type !== "bank") return false;
  if ((location.hash || "").startsWith("#/bank")) bankPage(location.hash.split("?")[1]);
  return true;
}
