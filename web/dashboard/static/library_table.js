// The library's list view: a real table (name, folder/subfolder, size, base model, type, added, verify verdict)
// whose headers sort it, by the server (every page stays in one order however far the list is scrolled).

import { fmtBytes, fmtTime, h, withToken } from "./api.js";

// [heading, sort key on the server (null: not sortable), cell]
const COLUMNS = [
  ["Name", "name", (m, sameName) => h("span", { class: "cell-name" },
    m.preview_url ? h("img", { src: withToken(m.preview_url), loading: "lazy", alt: "", width: 40, height: 40 })
      : h("span", { class: "noimg" }),
    h("span", {}, h("span", { class: "name" }, breakable(m.name || m.relpath)),
      sameName ? h("span", { class: "file muted" }, m.relpath.slice(m.relpath.lastIndexOf("/") + 1)) : null))],
  ["Folder", "path", (m) => {
    const at = m.relpath.lastIndexOf("/");
    return at > 0 ? `${m.folder}/${m.relpath.slice(0, at)}` : m.folder;
  }],
  ["Size", "size", (m) => fmtBytes(m.size)],
  ["Base model", "base_model", (m) => m.base_model || "—"],
  ["Type", null, (m) => m.model_type || ""],
  ["Added", "created", (m) => fmtTime(m.created_at)],
  ["Verify", null, (m) => (m.verify_status === "ok" ? "✓ ok" : m.verify_status || "not verified")],
];

const slug = (label) => label.toLowerCase().replace(/ /g, "-");

/** A name that may break only after its separators (_ - . / and a lower-to-upper case change): a long file
 * name wraps between its words, never in the middle of one. */
export function breakable(name) {
  const out = [];
  for (const part of String(name).split(/(?<=[_\-./])|(?<=[a-z])(?=[A-Z])/)) out.push(part, h("wbr"));
  out.pop();
  return out;
}

export function tableHead(state, sortBy) {
  return h("thead", {}, h("tr", {}, COLUMNS.map(([label, key]) => {
    const current = key && state.sort === key;
    const sorted = current ? (state.order === "asc" ? "ascending" : "descending") : null;
    return h("th", { scope: "col", "aria-sort": sorted, dataset: { column: slug(label) } },
      key ? h("button", { type: "button", class: "th-sort", onclick: () => sortBy(key) },
        label, current ? (state.order === "asc" ? " ▲" : " ▼") : "") : label);
  })));
}

export function tableRows(items, sameNames, open) {
  return items.map((m) => h("tr", { class: "model-row", tabindex: 0, dataset: { folder: m.folder, pi: m.path_index, relpath: m.relpath },
    onclick: (e) => open(m, e), onkeydown: (e) => { if (e.key === "Enter") open(m, e); } },
  COLUMNS.map(([label, , cell]) => h("td", { dataset: { column: slug(label) } }, cell(m, sameNames.has(m.name))))));
}
