// Workflows view: drop a ComfyUI workflow (.json, or a PNG/WebP ComfyUI saved) on the page, or pick one; see
// each model it needs, whether the store has it and on which GPU hosts it can run; "Download missing" fetches
// the rest once for every host, and the table turns present as the downloads finish.

import { api, fmtBytes, h, showError, toast } from "./api.js";
import { onTasks, tasks } from "./live.js";
import { isTerminal } from "./vocab.js";

const STATE_TEXT = { present: "present", missing: "missing", ambiguous: "ambiguous", mismatch: "hash differs" };
let current = null; // { file, answer, taskId, childIds }

function form(file) {
  const body = new FormData();
  body.append("file", file, file.name);
  return body;
}

async function check(file) {
  const status = document.getElementById("wf-status");
  status.textContent = `Reading ${file.name}…`;
  try {
    const answer = await api("POST", "/workflows/resolve", form(file));
    current = { file, answer, taskId: current && current.file === file ? current.taskId : null, childIds: current && current.file === file ? current.childIds : new Set() };
    render();
  } catch (err) {
    status.textContent = "";
    showError(err, `Checking ${file.name}`);
  }
}

async function fetchMissing() {
  if (!current) return;
  const button = document.getElementById("wf-fetch");
  button.disabled = true;
  try {
    // 202: the workflow task (its params name the downloads); 200: nothing to start, and why
    const started = await api("POST", "/workflows/fetch", form(current.file));
    const task = started.kind === "workflow" ? started : null;
    const skipped = task ? task.params.skipped || [] : started.skipped || [];
    for (const s of skipped) toast(`Not fetched: ${s.name}: ${s.message}`, "error");
    if (!task) {
      toast("Nothing to download.");
    } else {
      const children = task.params.children || [];
      current.taskId = task.id;
      current.childIds = new Set(children.map((c) => c.task_id));
      toast(`Downloading ${children.length} model(s) for ${current.file.name}.`);
    }
    render();
  } catch (err) {
    showError(err, "Downloading the missing models");
  } finally {
    button.disabled = false;
  }
}

function hostCell(r, host) {
  const ok = r.hosts && r.hosts[host];
  return h("td", { class: ok ? "ok" : "bad", "data-host": host }, ok ? "yes" : "no");
}

function where(r) {
  if (r.model) return `${r.model.folder}/${r.model.relpath}`;
  if (r.candidates && r.candidates.length) return `copies: ${r.candidates.map((c) => `${c.folder}/${c.relpath}`).join(", ")}`;
  if (r.source) return r.source.url;
  return "no source known: add it yourself";
}

function childFor(r) {
  if (!current || !current.taskId) return null;
  for (const id of current.childIds) {
    const t = tasks.get(id);
    const p = (t && t.params) || {};
    const rel = p.subfolder ? `${p.subfolder}/${p.filename}` : p.filename;
    if (t && (rel === r.relpath || p.filename === r.name)) return t;
  }
  return null;
}

function stateCell(r) {
  const child = r.state === "present" ? null : childFor(r);
  if (child && child.state !== "succeeded") {
    const p = child.progress || {};
    const pct = p.total ? ` ${Math.floor((100 * (p.done || 0)) / p.total)}%` : "";
    const why = child.state === "failed" && child.error ? `: ${child.error.message}` : "";
    return h("td", { class: `state ${child.state}` }, `${child.state}${pct}${why}`);
  }
  return h("td", { class: `state ${r.state}` }, STATE_TEXT[r.state] || r.state, r.optional ? " (optional)" : "");
}

function render() {
  const out = document.getElementById("wf-result");
  const status = document.getElementById("wf-status");
  if (!current) return;
  const { answer, file } = current;
  const hosts = Object.keys(answer.ready).sort();
  const refs = answer.references;
  const missing = refs.filter((r) => r.state === "missing" && !r.optional);
  const ready = hosts.filter((x) => answer.ready[x]);
  status.textContent = !refs.length ? `${file.name} names no model files.`
    : `${file.name}: ${refs.length} model(s), ${missing.length} missing. `
      + (hosts.length ? `Ready on: ${ready.join(", ") || "no host"}.` : "No live GPU host to judge.");
  const rows = refs.map((r) => h("tr", { "data-name": r.name, "data-state": r.state },
    stateCell(r), h("td", {}, r.folder || "?"), h("td", { class: "name" }, r.name),
    h("td", {}, r.matched_by || "—"), ...hosts.map((x) => hostCell(r, x)), h("td", { class: "where" }, where(r))));
  const task = current.taskId ? tasks.get(current.taskId) : null;
  const progress = task && task.progress && task.progress.total
    ? ` ${fmtBytes(task.progress.done)} / ${fmtBytes(task.progress.total)}` : "";
  out.replaceChildren(
    h("table", { class: "wf-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "State"), h("th", {}, "Folder"), h("th", {}, "Model"), h("th", {}, "Matched by"),
        ...hosts.map((x) => h("th", {}, x)), h("th", {}, "Where / source"))),
      h("tbody", {}, rows)),
    h("p", { class: "row wrap" },
      h("button", { id: "wf-fetch", type: "button", onclick: fetchMissing, disabled: !missing.some((r) => r.source) || (task && !isTerminal(task)) },
        "Download missing"),
      task ? h("span", { id: "wf-task", class: `muted state ${task.state}` }, `Fetch ${task.state}${progress}`
        + (task.state === "failed" && task.error ? `: ${task.error.message}` : "")) : ""));
}

let recheckTimer = null;

// The downloads' events arrive over the live feed: redraw their progress, and check the workflow again once one
// has finished so the table shows what the store now has.
function onTaskChange(ids) {
  if (!current || !current.taskId) return;
  const mine = ids === null || ids.some((id) => id === current.taskId || current.childIds.has(id));
  if (!mine) return;
  render();
  const ended = [...current.childIds, current.taskId].some((id) => tasks.has(id) && isTerminal(tasks.get(id)));
  if (ended && !recheckTimer) {
    recheckTimer = setTimeout(() => {
      recheckTimer = null;
      check(current.file);
    }, 300);
  }
}

export function initWorkflows() {
  const input = document.getElementById("wf-file");
  const zone = document.getElementById("wf-drop");
  input.addEventListener("change", () => input.files[0] && check(input.files[0]));
  // The whole page takes a dropped file while this view is open.
  const view = document.getElementById("view-workflows");
  for (const target of [zone, view]) {
    target.addEventListener("dragover", (ev) => {
      ev.preventDefault();
      zone.classList.add("over");
    });
    target.addEventListener("dragleave", () => zone.classList.remove("over"));
    target.addEventListener("drop", (ev) => {
      ev.preventDefault();
      zone.classList.remove("over");
      const file = ev.dataTransfer && ev.dataTransfer.files[0];
      if (file) check(file);
    });
  }
  onTasks(onTaskChange);
}
