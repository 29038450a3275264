// attach.js - attachments in the console's pages (issue 18): the list of a
// message's files in the case view with their download, and the form's file
// field with its chunked upload. A file's name and media type are written by
// its sender: they go on the page as text only (el() children, textContent).

const CHUNK = 512 * 1024; // bytes per upload request (the console's limit)

// 12,5 MiB in Vietnamese, 12.5 MiB in English
function sizeText(t, n) {
  const one = (x) => x.toLocaleString(document.documentElement.lang || "vi",
    { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  if (n < 1024) return t("att.bytes", { n });
  if (n < 1024 * 1024) return t("att.kib", { n: one(n / 1024) });
  return t("att.mib", { n: one(n / 1048576) });
}

// Fetches attachment a of message id through the console (which downloads,
// decrypts and checks it against the signed manifest first) and hands it to
// the browser as a download; a refusal is said in status.
async function download(ctx, id, a, status) {
  const { t, errorText } = ctx;
  status.className = "notice";
  status.textContent = t("att.downloading", { f: a.file_name });
  let res;
  try {
    res = await fetch(`/api/v1/messages/${encodeURIComponent(id)}/attachments/${a.index}`,
      { credentials: "same-origin", cache: "no-store" });
  } catch (e) {
    res = null;
  }
  if (!res || !res.ok) {
    let data = {};
    try { data = res ? await res.json() : {}; } catch (e) { data = {}; }
    status.className = "notice bad";
    status.textContent = res && res.status === 502 ? t("att.mismatch", { f: a.file_name })
      : errorText({ status: res ? res.status : 0, data });
    return;
  }
  const url = URL.createObjectURL(await res.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = a.file_name; // the browser makes it safe for its disk
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  status.textContent = t("att.done", { f: a.file_name });
}

// The attachments of a message: a table (name, type, size, download when
// id is given), or null when there are none.
export function attachmentList(ctx, list, id) {
  const { t, el } = ctx;
  if (!list || !list.length) return null;
  const status = el("p", { id: "attach-status", role: "status", "aria-live": "polite" });
  const head = ["att.name", "att.type", "att.size"].concat(id ? ["att.action"] : []);
  return el("section", { id: "attachments" }, el("h2", {}, t("att.title")),
    el("table", { id: "attach-table" },
      el("thead", {}, el("tr", {}, head.map((k) => el("th", { scope: "col" }, t(k))))),
      el("tbody", {}, list.map((a, i) => el("tr", { class: "attachment", "data-index": i },
        el("td", { class: "att-name" }, a.file_name),
        el("td", { class: "att-type" }, a.media_type),
        el("td", { class: "att-size" }, sizeText(t, a.size)),
        id ? el("td", {}, el("button", { type: "button", class: "secondary att-download",
          "aria-label": t("att.downloadName", { f: a.file_name }),
          onclick: () => download(ctx, id, { index: a.index === undefined ? i : a.index, file_name: a.file_name }, status) },
        t("att.download"))) : null)))),
    el("p", { class: "muted" }, t("att.help")), status);
}

// The form's file field: pick files, listed by name and size (text).
export function attachField(t, el) {
  const list = el("ul", { id: "attach-list", class: "muted" });
  const input = el("input", { type: "file", id: "f-attachments", name: "attachments", multiple: true,
    "aria-describedby": "attach-help e-attachments" });
  input.addEventListener("change", () => {
    list.replaceChildren(...[...input.files].map((f) => el("li", {}, f.name, " (", sizeText(t, f.size), ")")));
  });
  return el("div", { class: "field" },
    el("label", { for: "f-attachments" }, t("f.attachments")), input, list,
    el("p", { id: "attach-help", class: "muted" }, t("att.formHelp")),
    el("span", { class: "error", id: "e-attachments" }));
}

function b64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

// Uploads the files chosen in form's field (once per file: a retried send
// reuses them), calling progress(text). {ok, ids} or {ok: false, r} with
// the refused answer.
export async function uploadAttachments(form, api, t, progress) {
  const input = form.querySelector("#f-attachments");
  const files = input ? [...input.files] : [];
  form.uploads = form.uploads || new Map();
  const ids = [];
  const total = files.reduce((s, f) => s + f.size, 0) || 1;
  let done = 0;
  for (const f of files) {
    if (form.uploads.has(f)) { ids.push(form.uploads.get(f)); done += f.size; continue; }
    const r = await api("POST", "/uploads", { name: f.name, size: f.size });
    if (!r.ok) return { ok: false, r };
    for (let off = 0; off < f.size; off += CHUNK) {
      const part = new Uint8Array(await f.slice(off, off + CHUNK).arrayBuffer());
      const r2 = await api("POST", `/uploads/${r.data.id}`, { offset: off, data: b64(part) });
      if (!r2.ok) return { ok: false, r: r2 };
      done += part.length;
      progress(t("att.uploading", { p: Math.floor((done * 100) / total) }));
    }
    form.uploads.set(f, r.data.id);
    ids.push(r.data.id);
  }
  return { ok: true, ids };
}

// A refused send's words for an attachment: the hash bank or the media
// policy in the user's language with what to do; else the console's.
export function attachRefusal(form, t, data) {
  if (data && data.field === "attachments" && data.reason) {
    data.message = t("att.refused." + data.reason, { f: data.file || "" });
  }
  if (data && data.field === "attachments") form.uploads = new Map(); // upload again
  return data;
}
