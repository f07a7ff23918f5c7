// Upload a model file from this browser (Add model): the file goes in chunks (POST /uploads, then PATCH
// /uploads/<id> at the upload's offset), so a lost connection or a reload resumes where the server stands:
// picking the same file again continues it. The folder is suggested from the file's own header (POST
// /uploads/inspect); the server hashes the bytes as they arrive and publishes the file only when it is complete
// and sound, so a tab closed half-way leaves nothing under the model's name.

import { ApiError, api, fmtBytes, fmtDuration, h, showError, toast } from "./api.js";
import { folders } from "./library.js";

const CHUNK = 8 * 1024 * 1024;
const KEY = "depot.uploads";
let running = null; // { cancelled: bool } of the upload in progress

const fileKey = (f) => `${f.name}:${f.size}:${f.lastModified}`;
const saved = () => JSON.parse(localStorage.getItem(KEY) || "{}");
function remember(file, id) {
  const all = saved();
  if (id) all[fileKey(file)] = id; else delete all[fileKey(file)];
  localStorage.setItem(KEY, JSON.stringify(all));
}

async function sendChunk(id, offset, blob) {
  try {
    return await api("PATCH", `/uploads/${id}`, blob, { headers: { "Upload-Offset": String(offset) } });
  } catch (err) {
    if (err.status === 0) throw new ApiError(0, "unreachable", "The connection to the server was lost; pick the file again to resume.");
    throw err;
  }
}

// What the file is, from its header (the first MiB holds it for nearly every file): the folder suggested
async function suggest(file) {
  try {
    const head = await file.slice(0, 1024 * 1024).arrayBuffer();
    return await api("POST", "/uploads/inspect", new Blob([head], { type: "application/octet-stream" }));
  } catch (err) {
    return { kind: null, folder: null };
  }
}

export function renderUpload(box) {
  const file = h("input", { id: "upload-file", type: "file", accept: ".safetensors,.sft,.gguf,.ckpt,.pt,.pth,.bin,.onnx", "aria-label": "Model file" });
  const folderSel = h("select", { id: "upload-folder", "aria-label": "Upload folder" });
  const subfolder = h("input", { id: "upload-subfolder", type: "text", placeholder: "optional, e.g. styles/anime", "aria-label": "Subfolder" });
  const name = h("input", { id: "upload-name", type: "text", "aria-label": "Upload file name", size: 40 });
  const what = h("p", { class: "muted", id: "upload-kind" });
  const bar = h("progress", { id: "upload-progress", max: 1, value: 0, hidden: true });
  const status = h("p", { class: "muted", id: "upload-status", "aria-live": "polite" });
  const start = h("button", { type: "submit", id: "upload-start", disabled: true }, "Upload");
  const cancel = h("button", { type: "button", class: "secondary", id: "upload-cancel", hidden: true }, "Cancel");
  const fillFolders = (chosen) => {
    folderSel.replaceChildren(...folders().map((f) => h("option", { value: f.name, selected: f.name === chosen }, f.name)));
  };
  fillFolders("checkpoints");
  file.addEventListener("change", async () => {
    const f = file.files[0];
    start.disabled = !f;
    if (!f) return;
    name.value = f.name;
    const found = await suggest(f);
    fillFolders(found.folder || folderSel.value || "checkpoints");
    what.textContent = found.kind
      ? `This is a ${found.kind}${found.family ? ` for ${found.family}` : ""}: it goes in ${found.folder || "a folder you choose"}.`
      : `${fmtBytes(f.size)}; its header does not say what it is: choose its folder.`;
    status.textContent = saved()[fileKey(f)] ? "An earlier upload of this file was cut short: Upload resumes it." : "";
  });
  cancel.addEventListener("click", () => { if (running) running.cancelled = true; });
  const form = h("form", { class: "card", id: "upload-form", onsubmit: async (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f || running) return;
    running = { cancelled: false };
    start.disabled = true;
    cancel.hidden = false;
    bar.hidden = false;
    try {
      await upload(f, { folder: folderSel.value, subfolder: subfolder.value.trim() || null, filename: name.value.trim() },
        (done, rate) => {
          bar.value = done / f.size;
          status.textContent = `${fmtBytes(done)} of ${fmtBytes(f.size)} · ${fmtBytes(rate)}/s${rate ? ` · ${fmtDuration((f.size - done) / rate)} left` : ""}`;
        });
    } catch (err) {
      status.textContent = err.message;
      showError(err, "Upload failed");
    } finally {
      running = null;
      start.disabled = false;
      cancel.hidden = true;
    }
  } },
  h("h2", {}, "Upload a model file"),
  h("p", { class: "muted" }, "From this computer into the shared store. Large files resume after a lost connection: pick the same file again."),
  h("label", { class: "stack" }, "File", file), what,
  h("div", { class: "row wrap" }, h("label", {}, "Folder ", folderSel), h("label", {}, "Subfolder ", subfolder)),
  h("label", { class: "stack" }, "Save as", name),
  h("div", { class: "row wrap" }, start, cancel), bar, status);
  box.replaceChildren(form);
  document.addEventListener("depot:folders", () => fillFolders(folderSel.value || "checkpoints"));
}

async function upload(f, target, progress) {
  let id = saved()[fileKey(f)];
  let offset = 0;
  if (id) {
    try {
      offset = (await api("GET", `/uploads/${id}`)).offset;
    } catch (err) {
      id = null; // finished, cancelled or expired: start again
    }
  }
  if (!id) {
    const up = await api("POST", "/uploads", { ...target, size: f.size });
    id = up.id;
    remember(f, id);
  }
  const began = performance.now();
  const from = offset;
  while (offset < f.size) {
    if (running.cancelled) {
      await api("DELETE", `/uploads/${id}`).catch(() => null);
      remember(f, null);
      throw new Error("Cancelled; nothing was kept.");
    }
    let answer;
    try {
      answer = await sendChunk(id, offset, f.slice(offset, offset + CHUNK, "application/offset+octet-stream"));
    } catch (err) {
      if (err.status === 409 && err.details && Number.isInteger(err.details.offset)) {
        offset = err.details.offset; // the server has more (or less) than we thought: go on from there
        continue;
      }
      if (err.status !== 0) remember(f, null); // refused for good: the server removed the partial
      throw err;
    }
    offset = answer.offset;
    progress(offset, (offset - from) / Math.max(0.001, (performance.now() - began) / 1000));
    if (answer.model) {
      remember(f, null);
      toast(`Uploaded ${answer.model.folder}/${answer.model.relpath} (SHA-256 ${answer.model.sha256.slice(0, 12)}…).`);
      document.dispatchEvent(new CustomEvent("depot:index"));
      return answer.model;
    }
  }
  return null;
}
