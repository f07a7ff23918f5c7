// Add model: paste a URL → GET /resolve shows versions, files, size and target folder → POST /downloads.
// Refusals show the server's message (it says what to do) and, when a key would cure them, a link to Settings.

import { fmtBytes, get, h, post, settingsLink, showError, toast } from "./api.js";
import { folders } from "./library.js";
import { renderUpload } from "./upload.js";

function showRefusal(box, err) {
  box.replaceChildren(h("div", { class: "card refusal", role: "alert", dataset: { code: err.code } },
    h("strong", {}, err.code), ": ", err.message, " ", settingsLink(err.code)));
}

function civitaiVersionUrl(url, versionId) {
  const u = new URL(url);
  u.searchParams.set("modelVersionId", versionId);
  return u.toString();
}

function render(box, info) {
  const folderNames = folders().map((f) => f.name);
  if (info.suggested_folder && !folderNames.includes(info.suggested_folder)) folderNames.unshift(info.suggested_folder);
  // The folder is sent only once the user picks one: until then the server decides, per file (a GGUF's header
  // sends it to diffusion_models or text_encoders when it is saved).
  const dest = h("p", { id: "add-dest", class: "muted" });
  const showDest = () => { dest.textContent = `Saves ${folderSel.value}/${nameInput.value.trim() || "…"}`; };
  const folderSel = h("select", { id: "add-folder", "aria-label": "Target folder",
    onchange: () => { folderSel.dataset.touched = "1"; folderHint.hidden = true; showDest(); } },
    folderNames.map((n) => h("option", { value: n, selected: n === info.suggested_folder }, n)));
  const folderHint = h("p", { class: "muted", id: "add-folder-hint", hidden: true },
    "GGUF: its header decides between diffusion_models and text_encoders when it is saved, unless you choose a folder.");
  const showFolder = (f) => {
    if (folderSel.dataset.touched || !f) return;
    const name = f.folder || info.suggested_folder;
    if (name && ![...folderSel.options].some((o) => o.value === name)) folderSel.prepend(h("option", { value: name }, name));
    if (name) folderSel.value = name;
    folderHint.hidden = !(/\.gguf$/i.test(f.name || f.path || "") && ["diffusion_models", "text_encoders"].includes(name));
    showDest();
  };
  const nameInput = h("input", { id: "add-filename", type: "text", value: info.suggested_filename || "", size: 40,
    "aria-label": "File name" });
  let files = info.files || [];
  const fileList = h("div", { class: "files", role: "radiogroup", "aria-label": "Files" });
  const drawFiles = () => {
    const primary = files.find((f) => f.id === info.file_id) || files.find((f) => f.primary) ||
      files.find((f) => f.type === "Model") || files[0];
    fileList.replaceChildren(...files.map((f, i) => h("label", { class: "file" },
      h("input", { type: "radio", name: "add-file", value: String(i), checked: f === primary,
        onchange: () => { if (!nameInput.dataset.touched) nameInput.value = f.name; showFolder(f); } }),
      ` ${f.path || f.name} `, h("span", { class: "muted" }, [f.type, f.format, fmtBytes(f.size)].filter(Boolean).join(" · ")))));
    showFolder(primary);
  };
  nameInput.addEventListener("input", () => { nameInput.dataset.touched = "1"; showDest(); });
  drawFiles();
  showDest();
  let url = info.url;
  const versions = info.versions || [];
  const versionSel = versions.length > 1 ? h("select", { "aria-label": "Version", onchange: (e) => {
    const v = versions.find((x) => String(x.id) === e.target.value);
    files = v.files || [];
    url = civitaiVersionUrl(info.url, v.id);
    drawFiles();
  } }, versions.map((v) => h("option", { value: String(v.id), selected: v.id === info.version_id },
    `${v.name}${v.base_model ? ` (${v.base_model})` : ""}`))) : null;
  const start = h("button", { type: "submit", id: "add-start" }, "Download");
  const form = h("form", { class: "card", onsubmit: async (e) => {
    e.preventDefault();
    const checked = fileList.querySelector("input:checked");
    const file = checked ? files[Number(checked.value)] : null;
    const body = { url, folder: folderSel.dataset.touched ? folderSel.value : undefined,
      filename: nameInput.value.trim() || undefined };
    if (file && file.id !== null && file.id !== undefined && (info.source !== "direct")) body.file_id = file.id;
    start.disabled = true;
    try {
      const task = await post("/downloads", body);
      toast(`Download queued: ${body.filename || task.id}.`);
      location.hash = "#queue";
    } catch (err) {
      showRefusal(box.querySelector(".add-error") || box, err);
    } finally {
      start.disabled = false;
    }
  } },
  h("h2", {}, info.model_name || info.repo || info.suggested_filename || "Download"),
  h("p", { class: "muted" }, `Source: ${info.source}${info.model_type ? ` · ${info.model_type}` : ""}${info.size ? ` · ${fmtBytes(info.size)}` : ""}`),
  // What a download would meet now (a login, early access), said before anything is queued
  info.access ? h("div", { class: "refusal access-warning", role: "alert", dataset: { code: info.access.code } },
    h("strong", {}, "Before you download: "), info.access.message, " ", settingsLink(info.access.code)) : null,
  h("div", { class: "lookup" },
    info.preview ? h("img", { class: "lookup-preview", src: info.preview, alt: "Preview", loading: "lazy",
      referrerpolicy: "no-referrer", width: 160, height: 160 }) : null,
    h("dl", { class: "lookup-facts" },
      info.base_model ? [h("dt", {}, "Base model"), h("dd", {}, info.base_model)] : null,
      (info.trigger_words || []).length ? [h("dt", {}, "Trigger words"),
        h("dd", { class: "trigger-words" }, info.trigger_words.join(", "))] : null)),
  versionSel ? h("label", {}, "Version ", versionSel) : null,
  files.length ? fileList : null,
  h("div", { class: "row wrap" }, h("label", {}, "Folder ", folderSel), h("label", {}, "File name ", nameInput)),
  folderHint,
  dest,
  h("div", { class: "row" }, start),
  h("div", { class: "add-error" }));
  box.replaceChildren(form);
}

export function initAdd() {
  renderUpload(document.getElementById("upload-box"));
  const form = document.getElementById("resolve-form");
  const box = document.getElementById("resolve-result");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const url = document.getElementById("url").value.trim();
    if (!url) return;
    box.replaceChildren(h("p", { class: "muted" }, "Looking it up…"));
    try {
      render(box, await get(`/resolve?url=${encodeURIComponent(url)}`));
    } catch (err) {
      if (err.status === 404 && err.code === "http_404") showError(new Error("The resolve endpoint is not available on this server yet."));
      showRefusal(box, err);
    }
  });
}
