// The library: folder tabs, grid/list of models with lazy thumbnails, search as you type, sort with direction,
// a paged list (fast on 100k models: the server filters and sorts, we fetch a page at a time), the subfolder tree
// and the base-model/type/tag/favorite chips (library_filters.js), the list view's table (library_table.js), and
// the detail panel (detail.js); a model no ComfyUI loader reads where it is (a .gguf in checkpoints) carries a badge.

import { fmtBytes, get, h, post, showError, toast, withToken } from "./api.js";
import { initBulk, pick, selecting, shown } from "./bulk.js";
import { NSFW, initDetail, openDetail, shownModel } from "./detail.js";
import { renderFacets, renderTree } from "./library_filters.js";
import { breakable, tableHead, tableRows } from "./library_table.js";
import { waitForTask } from "./live.js";

const PAGE = 100;
const fileName = (rel) => rel.slice(rel.lastIndexOf("/") + 1);
const state = { folder: "", q: "", sort: "name", order: "asc", offset: 0, total: 0, request: 0, folders: [],
  showEmpty: false, base: null, kind: null, tag: null, favorite: false, update: false,
  verify: null, noPreview: false, duplicates: false, dir: "", view: "grid" };

export function folders() {
  return state.folders;
}

export async function loadFolders({ models = true } = {}) {
  try {
    state.folders = await get("/folders");
  } catch (err) {
    state.folders = [];
    const msg = err.status === 404 ? "The model store is not available on this server yet." : err.message;
    document.getElementById("library-status").textContent = msg;
    if (err.status !== 404) showError(err, "Loading folders");
    return;
  }
  renderTabs();
  document.dispatchEvent(new CustomEvent("depot:folders")); // the upload's folder list follows
  const select = document.getElementById("maint-folder");
  const chosen = select.value; // kept when a live refresh rebuilds the list
  // A folder with several roots also offers each root alone (scans only; "folder#path_index").
  select.replaceChildren(h("option", { value: "" }, "all folders"), ...state.folders.flatMap((f) => [
    h("option", { value: f.name }, f.name),
    ...(f.paths.length > 1 ? f.paths.map((p, i) => h("option", { value: `${f.name}#${i}` }, `${f.name} › ${p}`)) : []),
  ]));
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  if (models) await loadModels();
}

// Folder chips with their counts; empty folders (most of ComfyUI's two dozen, in a new store) wait behind a
// toggle, except the one selected.
function renderTabs() {
  const mk = (name, label, count) => h("button", { type: "button", role: "tab", class: "folder-tab",
    "aria-selected": String(state.folder === name), dataset: { folder: name }, onclick: () => selectFolder(name) },
  label, " ", h("span", { class: "count" }, count.toLocaleString()));
  const shown = state.folders.filter((f) => f.count > 0 || state.showEmpty || f.name === state.folder);
  const empty = state.folders.filter((f) => f.count === 0).length;
  const total = state.folders.reduce((n, f) => n + (f.count || 0), 0);
  document.getElementById("folder-tabs").replaceChildren(mk("", "All", total),
    ...shown.map((f) => mk(f.name, f.name, f.count || 0)),
    empty ? h("button", { type: "button", class: "folder-toggle", "aria-pressed": String(state.showEmpty),
      onclick: () => { state.showEmpty = !state.showEmpty; renderTabs(); } },
    state.showEmpty ? "Hide empty folders" : `+ ${empty} empty folder${empty === 1 ? "" : "s"}`) : null);
}

function selectFolder(name) {
  state.folder = name;
  // the subfolders, base models and types of another folder are other ones
  Object.assign(state, { dir: "", base: null, kind: null, tag: null });
  renderTabs();
  loadModels();
}

// The chips and the tree of the chosen folder (counted over the whole folder, whatever is filtered)
async function loadFacets() {
  let facets;
  try {
    facets = await get(`/facets${state.folder ? `?folder=${encodeURIComponent(state.folder)}` : ""}`);
  } catch (err) {
    return; // the listing itself says what is wrong
  }
  const total = (state.folders.find((f) => f.name === state.folder) || {}).count || 0;
  renderFacets(document.getElementById("facets"), facets, state, loadModels);
  renderTree(document.getElementById("subfolders"), state.folder, facets.dirs, total, state, loadModels);
}

function sortBy(key) {
  state.order = state.sort === key && state.order === "asc" ? "desc" : "asc";
  state.sort = key;
  syncSortControls();
  loadModels();
}

function syncSortControls() {
  document.getElementById("sort").value = state.sort;
  const order = document.getElementById("order");
  order.dataset.order = state.order;
  order.textContent = state.order === "asc" ? "↑ asc" : "↓ desc";
}

/** ``keep``: fetch again as many models as are shown (a live refresh keeps what the user scrolled to). */
export async function loadModels({ append = false, keep = false } = {}) {
  const ticket = ++state.request; // answers to older requests (typing fast) are ignored
  const limit = keep ? Math.max(PAGE, state.offset) : PAGE;
  if (!append) state.offset = 0;
  const params = new URLSearchParams({ sort: state.sort, order: state.order, offset: state.offset, limit });
  if (state.folder) params.set("folder", state.folder);
  if (state.q) params.set("q", state.q);
  if (state.dir) params.set("dir", state.dir);
  if (state.base !== null) params.set("base_model", state.base);
  if (state.kind !== null) params.set("type", state.kind);
  if (state.tag !== null) params.set("tag", state.tag);
  if (state.favorite) params.set("favorite", "true");
  if (state.update) params.set("update", "true");
  if (state.verify !== null) params.set("verify", state.verify);
  if (state.noPreview) params.set("preview", "false");
  if (state.duplicates) params.set("duplicates", "true");
  const status = document.getElementById("library-status");
  let body;
  try {
    body = await get(`/models?${params}`);
  } catch (err) {
    if (ticket !== state.request) return;
    status.textContent = err.status === 404 ? "The model list is not available on this server yet." : err.message;
    if (err.status !== 404) showError(err, "Loading models");
    return;
  }
  if (ticket !== state.request) return;
  state.total = body.total;
  if (!append) loadFacets();
  const grid = document.getElementById("models");
  // Cards whose names are alike say which file each is
  const seen = new Map();
  for (const m of body.items) seen.set(m.name, (seen.get(m.name) || 0) + 1);
  const sameNames = new Set([...seen].filter(([, n]) => n > 1).map(([name]) => name));
  if (state.view === "list") {
    const rows = tableRows(body.items, sameNames, open);
    if (append && grid.querySelector("tbody")) grid.querySelector("tbody").append(...rows);
    else grid.replaceChildren(h("table", { class: "model-table" }, tableHead(state, sortBy), h("tbody", {}, rows)));
  } else {
    const cards = body.items.map((m) => card(m, sameNames.has(m.name)));
    if (append) grid.append(...cards);
    else grid.replaceChildren(...cards);
  }
  shown(body.items, append);
  state.offset += body.items.length;
  // The whole store empty (not a search or one folder): say what to do, with a button for the scan.
  const filtered = state.q || state.dir || state.base !== null || state.kind !== null || state.tag !== null || state.favorite || state.update
    || state.verify !== null || state.noPreview || state.duplicates;
  const storeEmpty = body.total === 0 && !filtered && !state.folder;
  document.getElementById("library-empty").hidden = !storeEmpty;
  status.textContent = storeEmpty ? "" : body.total === 0
    ? (filtered ? `No model matches${state.q ? ` “${state.q}”` : " these filters"}.` : "No models in this folder yet. Add one, or run a scan.")
    : `${body.total} model${body.total === 1 ? "" : "s"}${state.q ? ` matching “${state.q}”` : ""}`;
  document.getElementById("more").hidden = state.offset >= state.total;
}

// A click opens the model, or picks it while selecting many (bulk.js)
function open(m, event) {
  if (selecting()) pick(m, event);
  else openDetail(m);
}

function card(m, sameName = false) {
  const img = m.preview_url
    ? h("img", { src: withToken(m.preview_url), loading: "lazy", decoding: "async", alt: "", width: 256, height: 256 })
    : h("div", { class: "noimg" }, "no preview");
  return h("button", { type: "button", class: "model", dataset: { folder: m.folder, pi: m.path_index, relpath: m.relpath },
    onclick: (e) => open(m, e) },
    img,
    m.favorite ? h("span", { class: "star", title: "Favorite", "aria-label": "Favorite" }, "★") : null,
    h("span", { class: "name" }, breakable(m.name || m.relpath)),
    sameName ? h("span", { class: "file muted" }, breakable(m.relpath)) : null,
    // The format tells apart models of one name (x.safetensors and x.gguf share their sidecars and preview).
    h("span", { class: "meta muted" }, [m.model_type || m.folder, fileFormat(m.relpath), fmtBytes(m.size)].filter(Boolean).join(" · ")),
    // Badges: what the model is for, and whether its bytes were checked
    h("span", { class: "badges" },
      m.base_model ? h("span", { class: "badge base" }, m.base_model) : null,
      NSFW[m.nsfw_level] ? h("span", { class: "badge nsfw", title: "Civitai's content rating" }, NSFW[m.nsfw_level]) : null,
      m.update_available ? h("span", { class: "badge update", title: `A newer version is on Civitai: ${m.update_available.name}` }, `⬆ ${m.update_available.name}`) : null,
      m.verify_status === "ok" ? h("span", { class: "badge verified", title: "Checked against its recorded hash" }, "✓ verified") : null,
      m.verify_status && m.verify_status !== "ok" ? h("span", { class: `badge verify verify-${m.verify_status}` }, m.verify_status) : null),
    m.misplaced ? h("span", { class: "misplaced", title: m.misplaced.reason }, `⚠ belongs in ${m.misplaced.suggested_folder}`) : null);
}

function fileFormat(relpath) {
  const name = fileName(relpath);
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toUpperCase() : "";
}

async function scanStore(button) {
  button.disabled = true;
  try {
    const task = await post("/scans", { mode: "quick" });
    toast("Scanning the store: new files appear in the library as they are indexed.");
    await waitForTask(task.id);
    await loadFolders(); // the chips' counts and the models
  } catch (err) {
    showError(err, "Starting the scan failed");
  } finally {
    button.disabled = false;
  }
}

// Every change of the index reaches the page as an "index" message on the socket (live.js): the shown models and
// an open detail are fetched again, at most every half second while a scan indexes batch after batch.
let refreshTimer = null;

function refreshSoon() {
  if (refreshTimer !== null) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    await Promise.all([loadModels({ keep: true }), loadFolders({ models: false })]);
    const shown = shownModel();
    if (shown && !document.querySelector("dialog[open]")) openDetail(shown, { quiet: true });
  }, 500);
}

export function initLibrary() {
  const reload = () => Promise.all([loadModels({ keep: true }), loadFolders({ models: false })]);
  initBulk({ state, reload, folders: () => state.folders });
  initDetail({ reload, folders: () => state.folders,
    filterTag: (tag) => { state.tag = tag.toLowerCase(); document.getElementById("detail").hidden = true; loadModels(); } });
  document.addEventListener("depot:index", refreshSoon);
  document.getElementById("empty-scan").addEventListener("click", (e) => scanStore(e.currentTarget));
  let timer = null;
  document.getElementById("search").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.q = e.target.value.trim();
      loadModels();
    }, 150);
  });
  document.getElementById("sort").addEventListener("change", (e) => {
    state.sort = e.target.value;
    loadModels();
  });
  document.getElementById("order").addEventListener("click", () => {
    state.order = state.order === "asc" ? "desc" : "asc";
    syncSortControls();
    loadModels();
  });
  for (const button of document.querySelectorAll("#view-switch button")) {
    button.addEventListener("click", () => {
      state.view = button.dataset.layout;
      for (const b of document.querySelectorAll("#view-switch button")) b.setAttribute("aria-pressed", String(b === button));
      const grid = document.getElementById("models");
      grid.classList.toggle("grid", state.view === "grid");
      grid.classList.toggle("list", state.view === "list");
      loadModels({ keep: true });
    });
  }
  document.getElementById("more").addEventListener("click", () => loadModels({ append: true }));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") document.getElementById("detail").hidden = true;
    if (e.key === "/" && document.activeElement.tagName !== "INPUT") {
      e.preventDefault();
      location.hash = "#library";
      document.getElementById("search").focus();
    }
  });
}
