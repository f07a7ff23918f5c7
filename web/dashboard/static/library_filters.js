// The library's narrowing controls, fed by GET /facets for the chosen folder: base-model, type and tag chips and
// the favorites toggle (toggles: press one to filter, again to clear) and the subfolder tree of the store's real layout (every root of the
// folder merged, as ComfyUI lists them), each with its count.

import { h } from "./api.js";

const UNKNOWN_BASE = "unknown";

/** Chips of one facet; ``chosen`` is the pressed value (null: none), ``pick(value|null)`` changes it; fewer
 * than ``least`` values show no chips (one type tells nothing: every model in loras is a LoRA). */
function chips(label, counts, chosen, pick, name, least = 2) {
  const values = Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (chosen !== null && !values.some(([v]) => v === chosen)) values.unshift([chosen, 0]);
  if (values.length < least && chosen === null) return null;
  return h("div", { class: "facet", role: "group", "aria-label": label, dataset: { facet: name } },
    h("span", { class: "facet-label muted" }, label),
    values.map(([value, count]) => h("button", { type: "button", class: "chip toggle",
      "aria-pressed": String(value === chosen), dataset: { value },
      onclick: () => pick(value === chosen ? null : value) },
    value || UNKNOWN_BASE, " ", h("span", { class: "count" }, count.toLocaleString()))));
}

/** A one-chip toggle (favorites, updates) shown while any model has it or it is pressed. */
function flag(label, name, count, state, changed) {
  if (!count && !state[name]) return null;
  return h("div", { class: "facet", role: "group", "aria-label": label, dataset: { facet: name } },
    h("button", { type: "button", class: "chip toggle", "aria-pressed": String(state[name]),
      onclick: () => { state[name] = !state[name]; changed(); } },
    `${label} `, h("span", { class: "count" }, (count || 0).toLocaleString())));
}

/** A toggle with no count (counting it would cost a pass over every hash). */
function plainToggle(label, name, state, changed) {
  return h("div", {}, h("button", { type: "button", class: "chip toggle", "aria-pressed": String(state[name]),
    dataset: { flag: name }, onclick: () => { state[name] = !state[name]; changed(); } }, label));
}

export function renderFacets(box, facets, state, changed) {
  box.replaceChildren(...[
    flag("★ Favorites", "favorite", facets.favorites, state, changed),
    flag("⬆ Updates", "update", facets.updates, state, changed),
    chips("Base model", facets.base_models || {}, state.base, (v) => { state.base = v; changed(); }, "base"),
    chips("Type", facets.types || {}, state.kind, (v) => { state.kind = v; changed(); }, "type"),
    chips("Tag", facets.tags || {}, state.tag, (v) => { state.tag = v; changed(); }, "tag", 1),
    chips("Verify", facets.verify || {}, state.verify, (v) => { state.verify = v; changed(); }, "verify", 1),
    h("div", { class: "facet", role: "group", "aria-label": "More filters", dataset: { facet: "more" } },
      ...[flag("No preview", "noPreview", facets.no_preview, state, changed),
        plainToggle("Duplicates", "duplicates", state, changed)].filter(Boolean).map((f) => f.firstChild)),
  ].filter(Boolean));
  box.hidden = !box.childElementCount;
}

/** {"a": 2, "a/b": 1} -> [{name: "a", path: "a", count: 2, children: [{name: "b", ...}]}] */
function treeOf(dirs) {
  const root = { children: new Map() };
  for (const path of Object.keys(dirs).sort((a, b) => a.localeCompare(b))) {
    let node = root;
    for (const part of path.split("/")) {
      if (!node.children.has(part)) {
        const at = node.path ? `${node.path}/${part}` : part;
        node.children.set(part, { name: part, path: at, count: dirs[at] || 0, children: new Map() });
      }
      node = node.children.get(part);
    }
  }
  return root;
}

// Branches the user opened or closed (path -> open), kept while the tree is drawn again after each change
const toggled = new Map();
// A small tree starts unfolded; a large one only along the chosen subfolder
const UNFOLDED = 24;

function branch(node, state, pick, unfold) {
  return h("ul", { role: node.path ? "group" : "tree" }, [...node.children.values()].map((child) => {
    const selected = state.dir === child.path;
    const within = state.dir.startsWith(`${child.path}/`);
    const button = h("button", { type: "button", class: "tree-node", "aria-current": selected ? "true" : null,
      title: child.path, onclick: () => pick(child.path) },
    child.name, " ", h("span", { class: "count" }, child.count.toLocaleString()));
    if (!child.children.size) return h("li", { role: "treeitem", dataset: { path: child.path } }, button);
    // A branch is open while the chosen subfolder is in it, or as the user left it
    const open = within || (toggled.has(child.path) ? toggled.get(child.path) : unfold || selected);
    const details = h("details", { open, ontoggle: (e) => toggled.set(child.path, e.target.open) },
      h("summary", {}, button), branch(child, state, pick, unfold));
    return h("li", { role: "treeitem", dataset: { path: child.path }, "aria-expanded": String(open) }, details);
  }));
}

export function renderTree(box, folder, dirs, total, state, changed) {
  const paths = Object.keys(dirs || {});
  if (!folder || !paths.length) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const pick = (path) => { state.dir = path; changed(); };
  const top = h("button", { type: "button", class: "tree-node", "aria-current": state.dir ? null : "true",
    onclick: () => pick("") }, `All of ${folder}`, " ", h("span", { class: "count" }, total.toLocaleString()));
  const wasOpen = box.querySelector("details.tree-box");
  // On a phone the tree starts folded, above the models; on a wide screen it is a column beside them.
  const open = wasOpen ? wasOpen.open : !window.matchMedia("(max-width: 640px)").matches;
  box.replaceChildren(h("details", { class: "tree-box", open },
    h("summary", { class: "muted" }, "Subfolders", state.dir ? `: ${state.dir}` : ""),
    h("div", { class: "tree" }, top, branch(treeOf(dirs), state, pick, paths.length <= UNFOLDED))));
  box.hidden = false;
}
