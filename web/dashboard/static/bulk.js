// Many models at once: "Select" turns a click on a card (or a table row) into picking it, shift-click picks the
// range from the last one picked, and "all N matching" picks what the search and filters match (sent as the
// search itself, so forty thousand models cost one request). The bar's actions start one task for the batch
// (POST /bulk): move, tag, untag, favorite, verify, Civitai metadata, previews, delete; its progress is in the
// queue, and the toast says how it ended.

import { confirmDialog, h, post, showError, toast } from "./api.js";
import { waitForTask } from "./live.js";

const sel = { on: false, models: new Map(), query: null, last: null, shown: [] };
let library = { state: null, reload: async () => {}, folders: () => [] };
const key = (m) => `${m.folder}/${m.path_index}/${m.relpath}`;

export function initBulk(hooks) {
  library = hooks;
  document.getElementById("select-mode").addEventListener("click", () => setMode(!sel.on));
}

export const selecting = () => sel.on;

/** The models of the page, in order (for shift-click ranges); called after every render. */
export function shown(items, append) {
  sel.shown = append ? sel.shown.concat(items) : items.slice();
  render(); // "all N matching" follows the search
  mark();
}

function setMode(on) {
  sel.on = on;
  sel.models.clear();
  sel.query = null;
  document.getElementById("select-mode").setAttribute("aria-pressed", String(on));
  document.getElementById("models").classList.toggle("selecting", on);
  render();
  mark();
}

export function pick(m, event) {
  sel.query = null;
  const at = sel.shown.findIndex((x) => key(x) === key(m));
  if (event && event.shiftKey && sel.last !== null && at >= 0) {
    const [a, b] = [Math.min(sel.last, at), Math.max(sel.last, at)];
    for (const x of sel.shown.slice(a, b + 1)) sel.models.set(key(x), x);
  } else if (sel.models.has(key(m))) {
    sel.models.delete(key(m));
  } else {
    sel.models.set(key(m), m);
  }
  sel.last = at;
  render();
  mark();
}

function mark() {
  for (const el of document.querySelectorAll("#models [data-relpath]")) {
    const k = `${el.dataset.folder}/${el.dataset.pi}/${el.dataset.relpath}`;
    const on = sel.on && (sel.query !== null || sel.models.has(k));
    el.classList.toggle("selected", on);
    if (sel.on) el.setAttribute("aria-pressed", String(on)); else el.removeAttribute("aria-pressed");
  }
}

function count() {
  return sel.query !== null ? library.state.total : sel.models.size;
}

function query() {
  const s = library.state;
  // every filter the listing applies, so "all N matching" is exactly what the page counts
  const q = { folder: s.folder || null, q: s.q || null, dir: s.dir || null, base_model: s.base, type: s.kind, tag: s.tag,
    favorite: s.favorite || null, update: s.update || null, verify: s.verify, preview: s.noPreview ? false : null,
    duplicates: s.duplicates || null };
  return Object.fromEntries(Object.entries(q).filter(([, v]) => v !== null && v !== undefined));
}

function render() {
  const bar = document.getElementById("bulk-bar");
  bar.hidden = !sel.on;
  if (!sel.on) return;
  const n = count();
  const act = (label, action, cls = "small secondary") => h("button", { type: "button", class: cls, disabled: !n,
    dataset: { action }, onclick: () => run(action, label) }, label);
  bar.replaceChildren(...[
    h("strong", { id: "bulk-count" }, `${n.toLocaleString()} selected`),
    library.state.total > n ? h("button", { type: "button", class: "small", id: "select-all",
      onclick: () => { sel.query = query(); render(); mark(); } }, `Select all ${library.state.total.toLocaleString()} matching`) : null,
    n ? h("button", { type: "button", class: "small secondary", onclick: () => { sel.models.clear(); sel.query = null; render(); mark(); } }, "Clear") : null,
    h("span", { class: "bulk-actions" },
      act("Move to…", "move"), act("Add tag…", "tag"), act("Remove tag…", "untag"), act("★ Favorite", "favorite"),
      act("Verify", "verify"), act("Refresh from Civitai", "metadata"), act("Regenerate previews", "previews"),
      act("Delete", "delete", "small danger")),
  ].filter(Boolean));
}

async function ask(action, n) {
  const what = `${n.toLocaleString()} model${n === 1 ? "" : "s"}`;
  if (action === "move") {
    const folder = h("select", { "aria-label": "Move to folder" }, library.folders().map((f) => h("option", { value: f.name, selected: f.name === library.state.folder }, f.name)));
    const sub = h("input", { type: "text", placeholder: "subfolder, e.g. styles/anime", "aria-label": "Move to subfolder" });
    if (!(await confirmDialog(`Move ${what} (each keeps its name and sidecars)`, h("div", { class: "stack" }, folder, sub), "Move"))) return null;
    return { to: { folder: folder.value, subfolder: sub.value.trim() || null } };
  }
  if (action === "tag" || action === "untag") {
    const tags = h("input", { type: "text", placeholder: "one word each, separated by spaces", "aria-label": "Tags" });
    if (!(await confirmDialog(`${action === "tag" ? "Add tags to" : "Remove tags from"} ${what}`, tags, action === "tag" ? "Add" : "Remove"))) return null;
    return { tags: tags.value.split(/\s+/).filter(Boolean) };
  }
  if (action === "delete") {
    return (await confirmDialog(`Move ${what} to the trash? They can be restored from Maintenance.`, null, "Delete")) ? {} : null;
  }
  return {};
}

async function run(action, label) {
  const n = count();
  const extra = await ask(action, n);
  if (extra === null) return;
  const body = { action, ...extra, ...(sel.query !== null ? { query: sel.query } : { models: [...sel.models.values()].map((m) => ({ folder: m.folder, path_index: m.path_index, relpath: m.relpath })) }) };
  let task;
  try {
    task = await post("/bulk", body);
  } catch (err) {
    showError(err, label.replace("…", ""));
    return;
  }
  toast(`${label.replace("…", "")}: ${n.toLocaleString()} model${n === 1 ? "" : "s"}, progress in the queue.`);
  setMode(false);
  const done = await waitForTask(task.id);
  const r = done.result || {};
  if (done.state !== "succeeded") showError(new Error((done.error && done.error.message) || done.state), label.replace("…", ""));
  else if (r.failed) toast(`${r.done} done, ${r.failed} not: ${r.errors[0].model.relpath}: ${r.errors[0].message}`, "error");
  else toast(`${label.replace("…", "")}: done${r.done !== undefined ? ` (${r.done})` : ""}.`);
  await library.reload();
}
