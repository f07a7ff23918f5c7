// A model's detail panel: everything the index knows (hashes, verify verdict and why, source and Civitai ids,
// the path on the server), the description rendered by the server (no script from a sidecar can run: it is
// Markdown with raw HTML shown as text), trigger words each with a copy button, tags, the favorite star, and the
// edits (name, trigger words, base model, tags, favorite: written to NAME.md), rename/move and delete with undo.

import { api, confirmDialog, fmtBytes, fmtTime, get, h, modelPath, showError, toast, withToken } from "./api.js";
import { waitForTask } from "./live.js";
import { choosePreview } from "./preview_picker.js";

const fileName = (rel) => rel.slice(rel.lastIndexOf("/") + 1);
// Civitai's content rating (nsfwLevel)
export const NSFW = { 4: "R", 8: "X", 16: "XXX", 32: "Blocked" };
// What the library gives the panel: reload() the shown models, folders() as GET /folders, filterTag(tag)
const library = { reload: async () => {}, folders: () => [], filterTag: () => {} };
let current = null; // the model shown, as GET /models/... answered

export function initDetail(hooks) {
  Object.assign(library, hooks);
}

export function shownModel() {
  const panel = document.getElementById("detail");
  return panel.hidden ? null : current;
}

function copyButton(text, label, title = null) {
  return h("button", { type: "button", class: "small", title, onclick: async () => {
    try {
      await navigator.clipboard.writeText(text);
      toast(`Copied ${label}.`);
    } catch (err) {
      showError(new Error("The browser refused clipboard access; select the text and copy it by hand."));
    }
  } }, label === "trigger words" ? "Copy all" : `Copy ${label}`);
}

// A model in a folder where no ComfyUI loader reads it (a .gguf in checkpoints): why, and a one-click move to
// the folder its loader reads, keeping its path inside the folder.
function misplacedNote(m) {
  const to = m.misplaced.suggested_folder;
  return h("div", { class: "misplaced-note", role: "note" },
    h("strong", {}, "Not loadable here. "), m.misplaced.reason, " ",
    h("button", { type: "button", class: "small", id: "move-suggested", onclick: async (e) => {
      e.target.disabled = true;
      try {
        await changed(await api("PATCH", `/models/${modelPath(m)}`, { move_to: { folder: to, path_index: 0, relpath: m.relpath } }), "Moved");
      } catch (err) {
        e.target.disabled = false;
        showError(err, "Move failed");
      }
    } }, `Move to ${to}`));
}

// A newer version on Civitai: download it next to this one (same folder and subfolder), or ignore it
function updateNote(m) {
  const u = m.update_available;
  const at = m.relpath.lastIndexOf("/");
  return h("div", { class: "update-note", role: "note" },
    h("strong", {}, "Update available: "), `${u.name}${u.base_model ? ` (${u.base_model})` : ""} on Civitai. `,
    h("button", { type: "button", class: "small", id: "download-update", onclick: async (e) => {
      e.target.disabled = true;
      try {
        const task = await api("POST", "/downloads", { url: u.url, folder: m.folder, path_index: m.path_index,
          ...(at > 0 ? { subfolder: m.relpath.slice(0, at) } : {}) });
        toast(`Downloading ${u.name} next to ${m.name}: progress in the queue.`);
        const done = await waitForTask(task.id);
        if (done.state === "succeeded") await changed(done.result.model, "Downloaded");
        else showError(new Error((done.error && done.error.message) || done.state), "The update's download");
      } catch (err) {
        e.target.disabled = false;
        showError(err, "The update's download");
      }
    } }, `Download ${u.name}`), " ",
    h("button", { type: "button", class: "small secondary", onclick: () => save(m, { ignore_update: true }, "Update ignored") },
      "Ignore this update"));
}

/** Civitai's model and version ids from the source page's address. */
function civitaiIds(url) {
  const m = /civitai\.com\/models\/(\d+)(?:\S*modelVersionId=(\d+))?/.exec(url || "");
  return m ? `model ${m[1]}${m[2] ? ` · version ${m[2]}` : ""}` : null;
}

function serverPath(m) {
  const folder = library.folders().find((f) => f.name === m.folder);
  return folder && folder.paths[m.path_index] ? `${folder.paths[m.path_index]}/${m.relpath}` : null;
}

function favoriteButton(m) {
  return h("button", { type: "button", class: "toggle favorite", "aria-pressed": String(!!m.favorite),
    title: m.favorite ? "Remove from favorites" : "Add to favorites", "aria-label": "Favorite",
    onclick: () => save(m, { favorite: !m.favorite }, m.favorite ? "Removed from favorites" : "Added to favorites") },
  m.favorite ? "★" : "☆");
}

export async function openDetail(summary, { quiet = false } = {}) {
  const panel = document.getElementById("detail");
  panel.hidden = false;
  current = { folder: summary.folder, path_index: summary.path_index, relpath: summary.relpath };
  if (!quiet) panel.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  let m;
  try {
    m = await get(`/models/${modelPath(summary)}`);
  } catch (err) {
    const gone = err.status === 404 ? "This model is no longer in the store: it was moved or deleted." : err.message;
    panel.replaceChildren(h("p", { class: "task-error" }, gone), closeButton());
    return;
  }
  current = m;
  const words = m.trigger_words || [];
  const hashes = m.hashes || {};
  const verdict = m.verify_status
    ? `${m.verify_status}${m.verify_reason ? ` (${m.verify_reason})` : ""}${m.verified_at ? `, ${fmtTime(m.verified_at)}` : ""}`
    : "not verified";
  const rows = [
    ["File", `${m.folder}/${m.relpath}`], ["On the server", serverPath(m)],
    ...Object.entries(m.host_paths || {}).map(([host, path]) => [`On ${host}`, path || "not mounted there"]),
    ["Size", fmtBytes(m.size)],
    ["Base model", m.base_model || "unknown"], ["Type", m.model_type || "unknown"],
    ...(NSFW[m.nsfw_level] ? [["Rating", `${NSFW[m.nsfw_level]} (Civitai)`]] : []),
    ["Verify", verdict], ["SHA-256", m.sha256 || "not hashed yet"],
    ...Object.entries(hashes).filter(([k]) => k.toUpperCase() !== "SHA256").sort().map(([k, v]) => [k, String(v)]),
    ["Source", m.source || "unknown"], ["Civitai", civitaiIds(m.source_url)],
    ["Added", fmtTime(m.created_at)], ["Modified", fmtTime(m.modified_at)],
  ].filter(([, v]) => v);
  const description = h("div", { class: "description-html" });
  // The server renders it with raw HTML turned into text and unsafe links refused (shared/store/description.py)
  if (m.description_html) description.innerHTML = m.description_html;
  panel.replaceChildren(...[
    h("div", { class: "detail-head" }, h("h2", {}, m.name || m.relpath), favoriteButton(m), closeButton()),
    m.misplaced ? misplacedNote(m) : null,
    m.update_available ? updateNote(m) : null,
    m.preview_url ? h("img", { src: withToken(m.preview_url), alt: `Preview of ${m.name}`, class: "detail-img" }) : null,
    h("div", { class: "tags", "aria-label": "Tags" }, (m.tags || []).map((t) => h("button", { type: "button",
      class: "chip tag", title: `Show the models tagged ${t}`, onclick: () => library.filterTag(t) }, `#${t}`)),
    h("button", { type: "button", class: "small secondary", onclick: () => editModel(m) }, "Edit")),
    h("dl", {}, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { class: /^(SHA|Auto|BLAKE|CRC)/.test(k) ? "hash" : "" }, v)])),
    shares(m),
    h("h3", {}, "Trigger words"),
    words.length
      ? h("div", { class: "words" }, words.map((w) => h("button", { type: "button", class: "word", title: "Copy",
        onclick: async () => { await navigator.clipboard.writeText(w).catch(() => null); toast(`Copied “${w}”.`); } }, w)),
      copyButton(words.join(", "), "trigger words"))
      : h("p", { class: "muted" }, "None recorded."),
    m.source_url ? h("p", {}, h("a", { href: m.source_url, target: "_blank", rel: "noopener noreferrer" }, "Open source page ↗")) : null,
    m.description_html ? h("section", { class: "description-box" }, h("h3", {}, "Description"), description) : null,
    m.description ? h("details", {}, h("summary", {}, "NAME.md as written"), h("pre", { class: "description" }, m.description)) : null,
    m.safetensors_metadata ? h("details", {}, h("summary", {}, "Embedded metadata"),
      h("pre", { class: "description" }, JSON.stringify(m.safetensors_metadata, null, 2).slice(0, 20000))) : null,
    h("div", { class: "row wrap" },
      h("button", { type: "button", onclick: () => editModel(m) }, "Edit"),
      h("button", { type: "button", class: "secondary", onclick: async () => {
        const model = await choosePreview(m);
        if (model) await changed(model, "Preview saved");
      } }, "Change preview"),
      h("button", { type: "button", class: "secondary", onclick: () => moveModel(m) }, "Rename / move"),
      h("button", { type: "button", class: "danger", onclick: () => deleteModel(m) }, "Delete")),
  ].filter(Boolean));
  if (!quiet) panel.querySelector(".detail-head button:last-child").focus();
}

function listText(items) {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

// Models of the same stem beside this one (x.safetensors and x.gguf) show the same sidecars and preview.
function shares(m) {
  const siblings = m.siblings || [];
  if (!siblings.length) return null;
  const links = siblings.map((rel) => h("a", { href: "#library", class: "sibling",
    onclick: (e) => { e.preventDefault(); openDetail({ folder: m.folder, path_index: m.path_index, relpath: rel }); } },
  fileName(rel)));
  const parts = links.flatMap((a, i) => (i === 0 ? [a] : [i === links.length - 1 ? " and " : ", ", a]));
  const what = (m.sidecars || []).length ? `Shares ${listText(m.sidecars)} with ` : "Shares its name with ";
  return h("p", { class: "shares muted" }, what, ...parts, ".");
}

function closeButton() {
  return h("button", { type: "button", class: "small secondary", "aria-label": "Close details",
    onclick: () => { document.getElementById("detail").hidden = true; } }, "Close");
}

async function changed(model, verb) {
  toast(`${verb}: ${model.name || model.relpath}.`);
  await library.reload();
  await openDetail(model, { quiet: true });
}

async function save(m, body, verb) {
  try {
    await changed(await api("PATCH", `/models/${modelPath(m)}`, body), verb);
    return true;
  } catch (err) {
    showError(err, "Saving failed");
    return false;
  }
}

const splitWords = (text, sep) => text.split(sep).map((w) => w.trim()).filter(Boolean);

async function editModel(m) {
  const field = (label, value, hint) => {
    const input = h("input", { type: "text", value: value || "", "aria-label": label });
    return [input, h("label", { class: "stack" }, label, input, hint ? h("span", { class: "muted small-text" }, hint) : null)];
  };
  const [name, nameRow] = field("Name", m.name);
  const [base, baseRow] = field("Base model", m.base_model, "e.g. SDXL 1.0, Pony, Flux.1 D; empty: not recorded");
  const [trig, trigRow] = field("Trigger words", (m.trigger_words || []).join(", "), "separated by commas");
  const [tags, tagsRow] = field("Tags", (m.tags || []).join(" "), "one word each, separated by spaces; search them as tag:name");
  const fav = h("input", { type: "checkbox", checked: !!m.favorite, "aria-label": "Favorite" });
  const form = h("div", { class: "stack edit-form" }, nameRow, baseRow, trigRow, tagsRow,
    h("label", { class: "row" }, fav, "Favorite"),
    h("p", { class: "muted small-text" }, "Saved to this model's NAME.md, which ComfyUI-Model-Manager reads too."));
  if (!(await confirmDialog(`Edit ${m.name}`, form, "Save"))) return;
  const body = {};
  if (name.value.trim() && name.value.trim() !== m.name) body.name = name.value.trim();
  if (base.value.trim() !== (m.base_model || "")) body.base_model = base.value.trim() || null;
  const trigList = splitWords(trig.value, ",");
  if (trigList.join("\n") !== (m.trigger_words || []).join("\n")) body.trigger_words = trigList;
  const tagList = splitWords(tags.value, /\s+/);
  if (tagList.join("\n") !== (m.tags || []).join("\n")) body.tags = tagList;
  if (fav.checked !== !!m.favorite) body.favorite = fav.checked;
  if (!Object.keys(body).length) return;
  await save(m, body, "Saved");
}

async function moveModel(m) {
  const folderSel = h("select", { "aria-label": "Target folder" },
    library.folders().map((f) => h("option", { value: f.name, selected: f.name === m.folder }, f.name)));
  const rel = h("input", { type: "text", value: m.relpath, "aria-label": "New relative path", size: 40 });
  const form = h("div", { class: "stack" }, h("label", {}, "Folder ", folderSel), h("label", {}, "Path ", rel));
  if ((m.siblings || []).length && (m.sidecars || []).length) {
    form.append(h("p", { class: "muted" }, `Its sidecars are copied: ${listText(m.siblings.map(fileName))} keeps them.`));
  }
  if (!(await confirmDialog(`Rename or move ${m.name}?`, form, "Move"))) return;
  const target = { folder: folderSel.value, path_index: folderSel.value === m.folder ? m.path_index : 0, relpath: rel.value.trim() };
  await save(m, { move_to: target }, "Moved");
}

/** Delete = move to the trash; the toast's Undo restores it (POST /trash/<id>/restore). */
export async function deleteModel(m) {
  const others = (m.siblings || []).map(fileName);
  const text = others.length && (m.sidecars || []).length
    ? `Move ${m.folder}/${m.relpath} to the trash? Its previews and sidecars stay: ${listText(others)} shares them.`
    : `Move ${m.folder}/${m.relpath} and its previews and sidecars to the trash?`;
  if (!(await confirmDialog(text, h("p", { class: "muted" }, "You can undo this, or restore it from the trash (Maintenance)."), "Delete"))) return;
  try {
    const gone = await api("DELETE", `/models/${modelPath(m)}`);
    document.getElementById("detail").hidden = true;
    const undo = gone && gone.location ? { label: "Undo", run: () => restore(gone.location.replace(/^\/api\/v1/, "")) } : null;
    toast(`Deleted ${m.name}.`, "info", undo);
    await library.reload();
  } catch (err) {
    showError(err, "Delete failed");
  }
}

export async function restore(entryPath) {
  try {
    const model = await api("POST", `${entryPath}/restore`);
    await changed(model, "Restored");
  } catch (err) {
    showError(err, "Restore failed");
  }
}
