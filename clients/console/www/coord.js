// coord.js - the coordinator's pages (shown only when the session says the
// home's member is a coordinator; the API refuses everyone else): overdue
// board, network figures, monthly report, audit log. Figures come from the
// console's verified audit cache; when the log does not verify the page
// shows the verification error, never a number. Charts are SVG drawn here,
// each with its table and a CSV download. Every value from the broker or a
// member goes on the page as text (el(), textContent).
import { api, badge, el, errorText, setMain, setTitle, t, urgencyBadge, when } from "./app.js";

export const COORD_PAGES = ["overdue", "network", "report", "audit"];
const SVG = "http://www.w3.org/2000/svg";
const C = { verify: null };

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function dur(ms) {
  const m = Math.max(0, Math.round(ms / 60000));
  if (m < 60) return t("dur.min", { n: m });
  if (m < 48 * 60) return t("dur.h", { n: Math.floor(m / 60), m: m % 60 });
  return t("dur.d", { n: Math.floor(m / 1440) });
}

function num(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number" && !Number.isInteger(v)) return v.toFixed(1);
  return String(v);
}

function pctText(v) { return v === null || v === undefined ? "–" : Math.round(v * 100) + " %"; }

function verifyError(r) {
  if (r.data && r.data.error === "VERIFY_FAILED")
    return el("div", { class: "notice bad", role: "alert", id: "verify-error" },
      el("strong", {}, t("coord.verify_failed")), " ", el("span", {}, r.data.message || ""));
  return el("p", { class: "notice bad", role: "alert" }, errorText(r));
}

function headBox(h, stale) {
  return el("p", { class: "notice", id: "head" }, t("coord.head", {
    size: h.size, root: String(h.root).slice(0, 16) + "…", time: when(h.time) }),
  stale ? el("span", { class: "error" }, " " + t("coord.stale")) : null);
}

// ---------------------------------------------------------------- overdue board

function overdueRow(x) {
  return el("tr", { "data-id": x.id, class: "overdue-row" },
    el("td", {}, when(x.received_at)),
    el("td", {}, t("kind." + x.kind)),
    el("td", {}, urgencyBadge(x.urgency)),
    el("td", {}, x.sender_name, el("div", { class: "muted" }, x.sender)),
    el("td", {}, t("deadline." + x.deadline), el("div", { class: "muted" }, when(x.due_at))),
    el("td", {}, badge("overdue", dur(x.overdue_ms))),
    el("td", {}, t("state." + x.state)),
    el("td", {}, x.notice ? t("coord.notice_sent", { at: when(x.escalated_at) }) : "–"));
}

function overdueTable(rows, caption) {
  const cols = ["col.received", "filter.kind", "filter.urgency", "col.from", "coord.deadline",
    "coord.overdue_by", "filter.state", "coord.notice"];
  return el("table", {},
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, cols.map((k) => el("th", { scope: "col" }, t(k))))),
    el("tbody", {}, rows.map(overdueRow)));
}

async function overduePage() {
  setTitle("nav.overdue");
  const r = await api("GET", "/coord/overdue");
  const head = el("h1", {}, t("nav.overdue"));
  if (!r.ok) return setMain(head, verifyError(r));
  const groups = r.data.groups.map((g) => el("section", { class: "overdue-group", "data-recipient": g.recipient },
    el("h2", {}, g.name, " ", el("span", { class: "muted" }, g.recipient)),
    g.actual.length ? overdueTable(g.actual, t("coord.actual", { n: g.actual.length })) : null,
    g.other.length ? el("details", {}, el("summary", {}, t("coord.exercise", { n: g.other.length })),
      overdueTable(g.other, t("coord.exercise", { n: g.other.length }))) : null));
  setMain(head, el("p", { id: "overdue-count", role: "status" }, t("coord.overdue_count", { n: r.data.count })),
    groups.length ? groups : el("p", { class: "notice" }, t("coord.none_overdue")));
}

// ---------------------------------------------------------------- charts and tables

// A horizontal bar chart of [{label, value}] (values are numbers or "<5").
function barChart(title, rows) {
  const w = 760, bar = 18, gap = 6, left = 340;
  const vals = rows.map((r) => (typeof r.value === "number" ? r.value : 0));
  const max = Math.max(1, ...vals);
  const h = rows.length * (bar + gap) + 10;
  const s = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: "100%", role: "img", "aria-label": title, class: "chart" },
    svg("title", {}, title));
  rows.forEach((r, i) => {
    const y = i * (bar + gap) + 5, v = vals[i];
    s.append(svg("text", { x: left - 6, y: y + bar - 4, "text-anchor": "end", "font-size": 12 }, r.label));
    s.append(svg("rect", { x: left, y, width: Math.max(1, ((w - left - 60) * v) / max), height: bar, fill: "#0a4b8c" }));
    s.append(svg("text", { x: left + ((w - left - 60) * v) / max + 4, y: y + bar - 4, "font-size": 12 }, num(r.value)));
  });
  return s;
}

function csvText(cols, rows) {
  const q = (v) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  };
  return [cols.join(","), ...rows.map((r) => cols.map((c) => q(r[c])).join(","))].join("\n") + "\n";
}

function download(name, type, text) {
  const a = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

// A table cell: enum names in the user's language, shares as percentages.
function cell(col, v) {
  if (col === "kind" || col === "urgency" || col === "reason") return t(col + "." + v);
  if (col === "day" || col === "week") return String(v).split("-").reverse().join("/");  // dd/mm/yyyy
  return col.endsWith("_within") ? pctText(v) : num(v);
}

// One figure: heading, chart, its table (a toggle) and a CSV download.
function figure(id, title, cols, rows, chartRows) {
  const table = el("table", { id: id + "-table" },
    el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col" }, t("col." + c))))),
    el("tbody", {}, rows.map((r) => el("tr", {}, cols.map((c) => el("td", {}, cell(c, r[c])))))));
  return el("section", { class: "figure", id },
    el("h2", {}, title),
    rows.length ? barChart(title, chartRows) : el("p", { class: "muted" }, t("coord.no_data")),
    el("details", { class: "table-view" }, el("summary", {}, t("coord.table_view")), table),
    el("div", { class: "actions" }, el("button", { type: "button", class: "secondary",
      onclick: () => download(id + ".csv", "text/csv", csvText(cols, rows)) }, t("coord.csv"))));
}

function figures(d) {
  const label = (r, ...ks) => ks.map((k) => cell(k, r[k])).join(" · ");
  return [
    figure("fig-day", t("coord.per_day"), ["day", "kind", "urgency", "count"], d.per_day,
      d.per_day.map((r) => ({ label: label(r, "day", "kind", "urgency"), value: r.count }))),
    figure("fig-week", t("coord.per_week"), ["week", "kind", "urgency", "count"], d.per_week,
      d.per_week.map((r) => ({ label: label(r, "week", "kind", "urgency"), value: r.count }))),
    figure("fig-flows", t("coord.flows"), ["from", "to", "count"], d.flows,
      d.flows.map((r) => ({ label: r.from + " → " + r.to, value: r.count }))),
    figure("fig-times", t("coord.times"), ["recipient", "urgency", "messages", "delivered", "delivered_p50_s",
      "delivered_p90_s", "delivered_within", "answered", "answered_p50_s", "answered_p90_s", "answered_within"],
    d.times, d.times.map((r) => ({ label: label(r, "recipient", "urgency"), value: r.answered_p50_s || 0 }))),
    figure("fig-declines", t("coord.declines"), ["reason", "count"], d.declines,
      d.declines.map((r) => ({ label: t("reason." + r.reason), value: r.count }))),
    figure("fig-takedowns", t("coord.takedowns", { n: num(d.takedowns.requests) }), ["outcome", "count"],
      d.takedowns.outcomes_24h, d.takedowns.outcomes_24h.map((r) => ({ label: r.outcome, value: r.count }))),
  ];
}

function totals(d) {
  const get = (s) => (d.totals.find((x) => x.status === s) || { count: 0 }).count;
  return el("p", { id: "totals" }, t("coord.totals", { a: get("actual"), e: get("exercise"), t: get("test") }));
}

const dayMs = 86400000;
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

async function networkPage(params) {
  setTitle("nav.network");
  const q = new URLSearchParams(params || "");
  const to = q.get("to") ? Date.parse(q.get("to")) + dayMs : Date.now() + 1;
  const from = q.get("from") ? Date.parse(q.get("from")) : to - 28 * dayMs;
  const head = el("h1", {}, t("nav.network"));
  const form = el("form", { class: "filters", id: "range" },
    el("div", {}, el("label", { for: "n-from" }, t("coord.from")), el("input", { type: "date", id: "n-from", value: isoDay(from) })),
    el("div", {}, el("label", { for: "n-to" }, t("coord.to")), el("input", { type: "date", id: "n-to", value: isoDay(to - 1) })),
    el("button", { type: "submit" }, t("filter.apply")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = "#/network?from=" + document.getElementById("n-from").value + "&to=" + document.getElementById("n-to").value;
  });
  setMain(head, form, el("p", { role: "status" }, t("coord.loading")));
  const r = await api("GET", `/coord/network?from=${from}&to=${to}`);
  if (!r.ok) return setMain(head, form, verifyError(r));
  setMain(head, form, headBox(r.data.head, r.data.stale), totals(r.data), figures(r.data));
}

// ---------------------------------------------------------------- monthly report

const REPORT_CSS = "body{font:14px system-ui,sans-serif;margin:24px}table{border-collapse:collapse;margin:8px 0}" +
  "th,td{border:1px solid #999;padding:3px 6px;text-align:left}svg,.actions,details>summary{display:none}" +
  "details{display:block}";

async function reportPage(params) {
  setTitle("nav.report");
  const q = new URLSearchParams(params || "");
  const month = q.get("month") || new Date().toISOString().slice(0, 7);
  const pub = q.get("public") === "1";
  const head = el("h1", {}, t("report.title", { m: month }));
  const form = el("form", { class: "filters", id: "report-form" },
    el("div", {}, el("label", { for: "r-month" }, t("report.month")), el("input", { type: "month", id: "r-month", value: month })),
    el("div", {}, el("label", {}, el("input", { type: "checkbox", id: "r-public", checked: pub }), " ", t("report.public"))),
    el("button", { type: "submit" }, t("filter.apply")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = "#/report?month=" + document.getElementById("r-month").value +
      (document.getElementById("r-public").checked ? "&public=1" : "");
  });
  const query = `month=${encodeURIComponent(month)}${pub ? "&public=1" : ""}`;
  const r = await api("GET", "/coord/report?" + query);
  if (!r.ok) return setMain(head, form, verifyError(r));
  const body = el("div", { id: "report" }, el("h1", {}, t("report.title", { m: month })),
    el("p", {}, t("report.stated", { size: r.data.head.size, root: r.data.head.root, time: when(r.data.head.time) })),
    pub ? el("p", {}, t("report.public_note")) : null, totals(r.data), figures(r.data));
  const actions = el("div", { class: "actions" },
    el("button", { type: "button", onclick: () => window.print() }, t("report.print")),
    el("a", { class: "button", href: "/api/v1/coord/report?format=csv&" + query, download: `casenet-report-${month}.csv`, id: "report-csv" }, t("coord.csv")),
    el("button", { type: "button", class: "secondary", id: "report-html", onclick: () => {
      const copy = body.cloneNode(true);
      copy.querySelectorAll("details").forEach((d) => d.setAttribute("open", ""));
      download(`casenet-report-${month}.html`, "text/html", "<!doctype html><html lang=\"" +
        document.documentElement.lang + "\"><meta charset=\"utf-8\"><title>casenet " + month +
        "</title><style>" + REPORT_CSS + "</style>" + copy.outerHTML + "</html>\n");
    } }, t("report.html")));
  setMain(form, actions, body);
}

// ---------------------------------------------------------------- audit log

const AUDIT_KINDS = ["SUBMITTED", "REJECTED", "FETCHED", "RECEIPT", "ESCALATED", "DEAD_LETTERED",
  "DIRECTORY_PUBLISHED", "AUTH_DENIED", "AUDIT_QUERIED", "PURGED", "BROKER_START", "BROKER_STOP"];

async function prove(index, cell) {
  cell.replaceChildren(t("coord.proving"));
  const r = await api("GET", "/coord/audit/prove?index=" + index);
  if (!r.ok) return cell.replaceChildren(verifyError(r));
  cell.replaceChildren(el("details", { open: true, class: "proof" },
    el("summary", {}, badge("ok", t("coord.proved", { i: r.data.index, n: r.data.tree_size }))),
    el("p", {}, t("coord.root"), " ", el("code", {}, r.data.root)),
    el("p", {}, t("coord.leaf"), " ", el("code", {}, r.data.leaf_hash)),
    el("ol", {}, r.data.proof.map((h) => el("li", {}, el("code", {}, h))))));
}

function auditRow(x) {
  const cell = el("td", {});
  cell.append(el("button", { type: "button", class: "secondary", onclick: () => prove(x.index, cell) }, t("coord.prove")));
  return el("tr", {}, el("td", {}, String(x.index)), el("td", {}, when(x.time)), el("td", {}, x.kind),
    el("td", {}, x.actor || "broker"), el("td", {}, x.message_kind ? t("kind." + x.message_kind) : ""),
    el("td", {}, x.urgency ? t("urgency." + x.urgency) : ""), el("td", {}, x.receipt || ""),
    el("td", { class: "muted" }, x.detail || ""), cell);
}

async function verifyNow(out) {
  C.verify = out;
  out.replaceChildren(el("progress", { id: "verify-progress", max: 1, value: 0 }), " ", t("coord.verifying"));
  const r = await api("POST", "/coord/audit/verify", {});
  C.verify = null;
  out.replaceChildren(r.ok ? el("p", { class: "notice", id: "verify-result" }, badge("ok", t("coord.verified")), " ",
    t("coord.head", { size: r.data.head.size, root: r.data.head.root.slice(0, 16) + "…", time: when(r.data.head.time) }))
    : verifyError(r));
}

async function auditPage(params) {
  setTitle("nav.audit");
  const q = new URLSearchParams(params || "");
  const api_q = new URLSearchParams();
  for (const k of ["member", "message", "case", "kind", "before"]) if (q.get(k)) api_q.set(k, q.get(k));
  if (q.get("from")) api_q.set("from", Date.parse(q.get("from")));
  if (q.get("to")) api_q.set("to", Date.parse(q.get("to")) + dayMs);
  const head = el("h1", {}, t("nav.audit"));
  const input = (id, key, type) => el("div", {}, el("label", { for: "a-" + id }, t(key)),
    el("input", { type: type || "text", id: "a-" + id, value: q.get(id) || "" }));
  const kind = el("select", { id: "a-kind" }, el("option", { value: "" }, t("coord.any")),
    AUDIT_KINDS.map((k, i) => el("option", { value: i + 1, selected: q.get("kind") === String(i + 1) }, k)));
  const form = el("form", { class: "filters", id: "audit-filters" }, input("member", "coord.member"),
    input("message", "f.messageId"), input("case", "col.case"),
    el("div", {}, el("label", { for: "a-kind" }, t("filter.kind")), kind),
    input("from", "coord.from", "date"), input("to", "coord.to", "date"), el("button", { type: "submit" }, t("filter.apply")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const n = new URLSearchParams();
    for (const k of ["member", "message", "case", "kind", "from", "to"]) {
      const v = document.getElementById("a-" + k).value.trim();
      if (v) n.set(k, v);
    }
    location.hash = "#/audit?" + n;
  });
  const out = el("div", { id: "verify-out", "aria-live": "polite" });
  const verify = el("button", { type: "button", id: "verify-now", onclick: () => verifyNow(out) }, t("coord.verify_now"));
  const r = await api("GET", "/coord/audit?" + api_q);
  if (!r.ok) return setMain(head, el("div", { class: "actions" }, verify), out, verifyError(r));
  const cols = ["coord.index", "ledger.at", "filter.kind", "coord.actor", "coord.message_kind", "filter.urgency",
    "coord.receipt", "coord.detail", "coord.proof"];
  setMain(head, headBox(r.data.head, r.data.stale),
    el("p", { class: "muted" }, t("coord.verified_at", { at: when(r.data.head.verified_at) })),
    el("div", { class: "actions" }, verify), out, form,
    el("table", { id: "audit-table" }, el("thead", {}, el("tr", {}, cols.map((k) => el("th", { scope: "col" }, t(k))))),
      el("tbody", {}, r.data.rows.map(auditRow))),
    r.data.rows.length === 200 ? el("div", { class: "actions" }, el("button", { type: "button", class: "secondary",
      onclick: () => { q.set("before", r.data.rows[r.data.rows.length - 1].index); location.hash = "#/audit?" + q; } },
    t("coord.older"))) : null);
}

// ---------------------------------------------------------------- hooks for app.js

export function coordPage(name, params) {
  if (name === "overdue") return overduePage();
  if (name === "network") return networkPage(params);
  if (name === "report") return reportPage(params);
  return auditPage(params);
}

// A live event for these pages: true when handled here.
export function coordEvent(n) {
  if (n.type === "verify") {
    const p = document.getElementById("verify-progress");
    if (p && C.verify) { p.max = Math.max(1, n.total); p.value = n.done; }
    return true;
  }
  if (n.type === "overdue") {
    if ((location.hash || "").startsWith("#/overdue")) overduePage();
    return true;
  }
  return false;
}

// Printing the report shows every table, not only the charts.
window.addEventListener("beforeprint", () => {
  document.querySelectorAll("#report details").forEach((d) => d.setAttribute("open", ""));
});
