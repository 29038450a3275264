// form.js - the new-referral form, built from the fields of the Referral
// payload (proto/casenet.proto): what must be filled first (urgency, harm,
// recipients, summary), everything optional folded away. The urgency is
// chosen once; the server writes it into both the header and the payload.
// A draft id is drawn when the form opens: a double click or a resubmitted
// form sends the same message id.
import { attachField } from "./attach.js";

const URGENCIES = ["emergency", "urgent-takedown", "standard", "info"];
const HARMS = ["SEXUAL_EXPLOITATION_MATERIAL", "LIVESTREAMED_ABUSE", "GROOMING", "SEXTORTION",
  "TRAFFICKING_LURE", "CYBERBULLYING", "PRIVATE_INFORMATION_EXPOSURE", "HARMFUL_CONTENT",
  "SELF_HARM", "SCAM", "OTHER"];
const CHANNELS = ["PHONE", "WEB_FORM", "EMAIL", "CHAT", "IN_PERSON", "PLATFORM_REPORT", "REFERRAL", "OTHER"];
const SEXES = ["FEMALE", "MALE", "OTHER", "UNKNOWN"];
const LEGAL = ["VITAL_INTEREST", "CRIME_PREVENTION", "STATUTORY_DUTY", "CONSENT"];

function randomHex(n) {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// The members the role matrix (PROTOCOL.md section 6.1) lets this member
// send kind to, as the console's /directory says ("may_send"), and the
// groups all of whose other active members are among them (a group leaves
// the sender out).
function allowed(dir, self, kind) {
  const all = ((dir && dir.members) || []).filter((m) => m.status === "active");
  const members = all.filter((m) => m.id !== self && (m.may_send || []).includes(kind));
  const ok = new Set(members.map((m) => m.id));
  const groups = [...new Set(members.flatMap((m) => m.groups))].sort().filter((g) =>
    all.filter((m) => m.id !== self && m.groups.includes(g)).every((m) => ok.has(m.id)));
  return { members, groups };
}

// The field builders both forms share: inputs labelled from the catalogue,
// each with its error span (aria-describedby); a required field's label is
// marked (class req) and its input aria-required.
function kit(t, el, dir, self, kind) {
  const text = (name, opts) => el("div", { class: "field" },
    el("label", { for: "f-" + name, class: opts && opts.req ? "req" : null }, t("f." + name)),
    opts && opts.area
      ? el("textarea", { id: "f-" + name, name, "aria-describedby": "e-" + name, "aria-required": opts && opts.req ? "true" : null })
      : el("input", { type: (opts && opts.type) || "text", id: "f-" + name, name, "aria-describedby": "e-" + name, min: opts && opts.min, "aria-required": opts && opts.req ? "true" : null }),
    el("span", { class: "error", id: "e-" + name }));
  const choice = (name, values, prefix, def, req) => el("div", { class: "field" },
    el("label", { for: "f-" + name, class: req ? "req" : null }, t("f." + name)),
    el("select", { id: "f-" + name, name, "aria-describedby": "e-" + name, "aria-required": req ? "true" : null },
      el("option", { value: "" }, "–"),
      values.map((v) => el("option", { value: v, selected: v === def }, t(prefix + v)))),
    el("span", { class: "error", id: "e-" + name }));
  const checks = (id, legend, errId, items) => el("fieldset", { id, "aria-describedby": errId },
    el("legend", { class: "req" }, legend),
    el("div", { class: "checks" }, items.map(([type, name, value, itemId, label, on]) => el("label", {},
      el("input", { type, name, value, id: itemId, checked: on }), " ", label))),
    el("span", { class: "error", id: errId }));
  const { members, groups } = allowed(dir, self, kind);
  const urgency = (first) => checks("urgency", t("f.urgency"), "e-urgency",
    URGENCIES.map((u) => ["radio", "urgency", u, "u-" + u, t("urgency." + u), u === first]));
  const recipients = () => {
    const box = checks("recipients", t("f.recipients"), "e-to", [
      ...members.map((m) => ["checkbox", "to", m.id, "to-" + m.id, m.name]),
      ...groups.map((g) => ["checkbox", "to", "@" + g, "to-@" + g, "@" + g])]);
    if (!members.length) box.querySelector(".checks").append(el("p", { id: "no-recipients", class: "muted" }, t("new.noRecipients")));
    return box;
  };
  const status = () => el("div", { id: "form-status", tabindex: -1, role: "alert" });
  const caseNumber = (form, prefix) => {
    const d = new Date();
    form.querySelector("#f-caseId").value = prefix + "-" + d.getFullYear() +
      String(d.getMonth() + 1).padStart(2, "0") + String(d.getDate()).padStart(2, "0") + "-" +
      randomHex(2).toUpperCase();
  };
  // the legal basis: its kind, and who consented when it is consent
  const legalBasis = (def) => {
    const kindField = choice("legalKind", LEGAL, "legal.", def, true);
    const by = text("consentedBy");
    const mark = () => {
      const on = kindField.querySelector("select").value === "CONSENT";
      by.hidden = !on;
      by.querySelector("label").classList.toggle("req", on);
      by.querySelector("input").setAttribute("aria-required", on ? "true" : "false");
    };
    kindField.querySelector("select").addEventListener("change", mark);
    mark();
    return [kindField, by];
  };
  return { text, choice, checks, urgency, recipients, status, caseNumber, legalBasis };
}

// Reads and checks what both forms share; returns helpers for the rest.
function reader(form, t) {
  const v = (name) => (form.querySelector(`[name="${name}"]`) || {}).value || "";
  const all = (name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((x) => x.value);
  const errors = [];
  for (const s of form.querySelectorAll("span.error")) s.textContent = "";
  for (const x of form.querySelectorAll("[aria-invalid]")) x.removeAttribute("aria-invalid");
  const need = (ok, id, errId, msg) => {
    if (ok) return;
    errors.push({ id, msg });
    const span = form.querySelector("#" + errId);
    if (span) span.textContent = msg;
    const f = form.querySelector("#" + CSS.escape(id));
    if (f) f.setAttribute("aria-invalid", "true");
  };
  const urgency = all("urgency")[0];
  const to = all("to");
  need(!!urgency, "u-emergency", "e-urgency", t("f.missing", { f: t("f.urgency") }));
  const firstTo = form.querySelector("input[name=to]");
  need(to.length > 0, firstTo ? firstTo.id : "recipients", "e-to", t("f.missingOne", { f: t("f.recipients") }));
  need(v("caseId").trim().length > 0, "f-caseId", "e-caseId", t("f.missing", { f: t("f.caseId") }));
  need(v("legalKind") !== "", "f-legalKind", "e-legalKind", t("f.missing", { f: t("f.legalBasis") }));
  const consent = v("legalKind") === "CONSENT";
  need(!consent || v("consentedBy").trim().length > 0, "f-consentedBy", "e-consentedBy", t("f.missing", { f: t("f.consentedBy") }));
  const legal = { kind: "LEGAL_BASIS_KIND_" + v("legalKind") };
  if (consent && v("consentedBy").trim()) legal.consentedBy = v("consentedBy").trim().normalize("NFC");
  if (v("reference").trim()) legal.reference = v("reference").trim();
  return { v, all, need, errors, urgency, to, legal };
}

export function referralForm({ t, el, dir, self }) {
  const { text, checks, choice, urgency, recipients, status, caseNumber, legalBasis } = kit(t, el, dir, self, "referral");
  const form = el("form", { id: "referral-form", novalidate: true },
    status(),
    urgency("emergency"),
    checks("harm", t("f.harmCategories"), "e-harmCategories",
      HARMS.map((h) => ["checkbox", "harm", h, "h-" + h, t("harm." + h)])),
    recipients(),
    text("caseId", { req: true }),
    legalBasis("VITAL_INTEREST"),
    text("summary", { req: true, area: true }),
    attachField(t, el),
    el("details", {},
      el("summary", {}, t("f.optional")),
      choice("intakeChannel", CHANNELS, "channel.", "PHONE"),
      text("intakeReceivedAtMs", { type: "datetime-local" }),
      el("fieldset", {}, el("legend", {}, t("f.children")),
        text("ageYears", { type: "number", min: 0 }), choice("sex", SEXES, "sex.")),
      text("numberOfChildren", { type: "number", min: 0 }),
      el("fieldset", {}, el("legend", {}, t("f.place")), text("provinceCode"), text("communeCode")),
      text("currentCondition", { area: true }),
      text("actionsTaken", { area: true }),
      el("fieldset", {}, el("legend", {}, t("f.artefacts")), text("platform"), text("url"), text("accountId")),
      text("requestedAction", { area: true }),
      text("reference")),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "send" }, t("new.send"))));
  form.dataset.draft = randomHex(16);
  form.dataset.kind = "referral";
  // a case number is required: one is proposed (editable), like HL-20261207-4F2A
  caseNumber(form, "HL");
  return form;
}

// A takedown request: locators, category and legal basis only, never a
// child's identity (proto TakedownRequest).
export function takedownForm({ t, el, dir, self }) {
  const { text, choice, urgency, recipients, status, caseNumber, legalBasis } = kit(t, el, dir, self, "takedown-request");
  const form = el("form", { id: "takedown-form", novalidate: true },
    status(),
    urgency("urgent-takedown"),
    recipients(),
    text("caseId", { req: true }),
    text("urls", { req: true, area: true }),
    text("platform"),
    choice("category", HARMS, "harm.", "", true),
    legalBasis("CRIME_PREVENTION"),
    text("reference"),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "send" }, t("new.send"))));
  form.dataset.draft = randomHex(16);
  form.dataset.kind = "takedown-request";
  caseNumber(form, "TD");
  return form;
}

// Reads a form: {errors: [{id, msg}], request} with request the body of
// POST /api/v1/messages. Errors name the field in the user's language and
// are tied to it (aria-invalid, the span named by aria-describedby).
export function collectForm(form, t) {
  const { v, all, need, errors, urgency, to, legal } = reader(form, t);
  const caseId = v("caseId").trim();
  let kind = form.dataset.kind, payload;
  if (kind === "takedown-request") {
    const urls = v("urls").split("\n").map((x) => x.trim()).filter(Boolean);
    need(urls.length > 0, "f-urls", "e-urls", t("f.missing", { f: t("f.urls") }));
    need(v("category") !== "", "f-category", "e-category", t("f.missing", { f: t("f.category") }));
    const platform = v("platform").trim();
    payload = { takedownRequest: { caseId, legalBasis: legal, items: urls.map((url, i) => ({
      itemId: String(i + 1), category: "HARM_CATEGORY_" + v("category"),
      locator: Object.assign({ url }, platform ? { platform } : {}) })) } };
  } else {
    const harms = all("harm");
    const summary = v("summary").trim();
    need(harms.length > 0, "h-SEXUAL_EXPLOITATION_MATERIAL", "e-harmCategories", t("f.missingOne", { f: t("f.harmCategories") }));
    need(summary.length > 0, "f-summary", "e-summary", t("f.missing", { f: t("f.summary") }));
    payload = { referral: referral(v, caseId, harms, summary, legal) };
  }
  return { errors, request: { kind, to, urgency, draft_id: form.dataset.draft, payload } };
}

// The form field (its id and error span) a payload path names.
const FIELDS = {
  caseId: ["f-caseId", "e-caseId"], summary: ["f-summary", "e-summary"],
  harmCategories: ["h-SEXUAL_EXPLOITATION_MATERIAL", "e-harmCategories"],
  urgency: ["u-emergency", "e-urgency"], "legalBasis.kind": ["f-legalKind", "e-legalKind"],
  "legalBasis.consentedBy": ["f-consentedBy", "e-consentedBy"], items: ["f-urls", "e-urls"],
  url: ["f-urls", "e-urls"], itemId: ["f-urls", "e-urls"], category: ["f-category", "e-category"],
  attachments: ["f-attachments", "e-attachments"],
};

// Ties a refusal of the console (its "fields" or "field", e.g. the library's
// "the referral lacks caseId, summary") to the fields it names: the message
// in each one's error span, aria-invalid set. Returns the ids it marked.
export function markServerError(form, data) {
  const paths = (data && (data.fields || (data.field ? [data.field] : []))) || [];
  const ids = [];
  for (const p of paths) {
    const rest = String(p).replace(/^payload\.[A-Za-z]+\./, "");
    const key = rest === "to" ? "to" : FIELDS[rest] ? rest : rest.replace(/\[\d+\]/g, "").split(".").pop();
    const hit = key === "to" ? [(form.querySelector("input[name=to]") || {}).id || "recipients", "e-to"] : FIELDS[key];
    if (!hit) continue;
    const span = form.querySelector("#" + hit[1]);
    if (span) span.textContent = data.message || "";
    const f = form.querySelector("#" + CSS.escape(hit[0]));
    if (f) f.setAttribute("aria-invalid", "true");
    ids.push(hit[0]);
  }
  return ids;
}

function referral(v, caseId, harms, summary, legal) {
  const r = { caseId, harmCategories: harms.map((h) => "HARM_CATEGORY_" + h), summary: summary.normalize("NFC"), legalBasis: legal };
  const opt = (key, val) => { if (val !== "" && val !== undefined && val !== null) r[key] = val; };
  if (v("intakeChannel")) r.intakeChannel = "INTAKE_CHANNEL_" + v("intakeChannel");
  const at = v("intakeReceivedAtMs");
  r.intakeReceivedAtMs = String(at ? new Date(at).getTime() : Date.now());
  const child = {};
  if (v("ageYears") !== "") child.ageYears = Number(v("ageYears"));
  if (v("sex")) child.sex = "SEX_" + v("sex");
  if (Object.keys(child).length) r.children = [child];
  if (v("numberOfChildren") !== "") r.numberOfChildren = Number(v("numberOfChildren"));
  const place = {};
  if (v("provinceCode").trim()) place.provinceCode = v("provinceCode").trim();
  if (v("communeCode").trim()) place.communeCode = v("communeCode").trim();
  if (Object.keys(place).length) r.place = place;
  opt("currentCondition", v("currentCondition").trim().normalize("NFC"));
  const actions = v("actionsTaken").split("\n").map((x) => x.trim()).filter(Boolean);
  if (actions.length) r.actionsTaken = actions;
  const art = {};
  if (v("platform").trim()) art.platform = v("platform").trim();
  if (v("url").trim()) art.url = v("url").trim();
  if (v("accountId").trim()) art.accountId = v("accountId").trim();
  if (Object.keys(art).length) r.artefacts = [art];
  opt("requestedAction", v("requestedAction").trim().normalize("NFC"));
  r.language = document.documentElement.lang || "vi";
  return r;
}

// Keeps the form's values and draft id in this tab's sessionStorage, so a
// reload loses nothing and a resubmission after it still sends the same
// message id. Returns a function that drops the draft (after sending).
// Logging out or the idle lock clears the tab's storage.
export function keepDraft(form) {
  const key = "casenet.draft." + form.dataset.kind;
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(key) || "null"); } catch (e) { saved = null; }
  if (saved && /^[0-9a-f]{32}$/.test(saved.draft || "")) {
    form.dataset.draft = saved.draft;
    for (const [name, val] of Object.entries(saved.fields || {})) {
      for (const e of form.querySelectorAll(`[name="${CSS.escape(name)}"]`)) {
        if (e.type === "file") continue; // files are chosen again after a reload
        if (e.type === "checkbox" || e.type === "radio") e.checked = Array.isArray(val) ? val.includes(e.value) : e.value === val;
        else e.value = String(val);
      }
    }
  }
  // what depends on a restored choice (the consent field) follows it
  for (const e of form.querySelectorAll("select")) e.dispatchEvent(new Event("change"));
  const save = () => {
    const fields = {};
    for (const e of form.elements) {
      if (!e.name || e.type === "file") continue;
      if (e.type === "checkbox") {
        fields[e.name] = fields[e.name] || [];
        if (e.checked) fields[e.name].push(e.value);
      } else if (e.type === "radio") {
        if (e.checked) fields[e.name] = e.value;
      } else {
        fields[e.name] = e.value;
      }
    }
    try { sessionStorage.setItem(key, JSON.stringify({ draft: form.dataset.draft, fields })); } catch (e) { /* full or off */ }
  };
  form.addEventListener("input", save);
  form.addEventListener("change", save);
  return () => { try { sessionStorage.removeItem(key); } catch (e) { /* ignore */ } };
}
