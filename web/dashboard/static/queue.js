// The queue: every task with a live progress bar, speed, ETA, host and state, and the control buttons the
// task's state allows (from GET /vocabulary, never retyped here).

import { api, fmtBytes, fmtDuration, h, settingsLink, showError, toast } from "./api.js";
import { onTasks, refreshTask, refreshTasks, tasks } from "./live.js";
import { actions, allStates, allows, isTerminal } from "./vocab.js";

// What each control action's button says: "delete" removes a task from the list and never touches a model.
const ACTION_LABELS = { delete: "Remove from list" };

const BYTE_KINDS = new Set(["download", "verify", "workflow"]);
// What the other kinds count
const UNITS = { scan: "files", preview: "models", bulk: "models" };

function amount(n, t) {
  if (BYTE_KINDS.has(t.kind) || (t.progress && t.progress.unit === "bytes")) return fmtBytes(n);
  const unit = UNITS[t.kind] && (Number(n) === 1 ? UNITS[t.kind].slice(0, -1) : UNITS[t.kind]);
  return `${Number(n ?? 0).toLocaleString()}${unit ? ` ${unit}` : ""}`;
}

export function taskLabel(t) {
  const p = t.params || {};
  const r = t.result || {};
  if (t.kind === "download") {
    // The same name however the download was started (dashboard, CLI, a workflow): the file name the user chose,
    // else the model's own name upstream, else the file's; the link only when nothing is known yet
    const plan = p.plan || {};
    const stem = (f) => f && f.replace(/\.[^.]+$/, "");
    const name = stem(p.filename) || (r.model && r.model.name) || (plan.meta && plan.meta.model_name)
      || stem(plan.filename) || p.url || "download";
    const folder = (r.model && r.model.folder) || plan.folder || p.folder;
    return `${name}${folder ? ` → ${folder}` : ""}`;
  }
  if (t.kind === "scan") return `Scan (${p.mode || "quick"})${p.folder ? ` of ${p.folder}` : ""}`;
  if (t.kind === "verify") return `Verify${p.folder ? ` ${p.folder}` : ""}`;
  if (t.kind === "preview") return `Previews${p.folder ? ` for ${p.folder}` : ""}`;
  if (t.kind === "workflow") return `Workflow ${p.title || ""}: ${(p.children || []).length} download(s)`;
  if (t.kind === "bulk") {
    const what = { move: `Move to ${p.to ? [p.to.folder, p.to.subfolder].filter(Boolean).join("/") : ""}`, delete: "Delete",
      tag: `Tag ${(p.tags || []).join(" ")}`, untag: `Untag ${(p.tags || []).join(" ")}`, favorite: "Favorite",
      unfavorite: "Unfavorite", metadata: "Civitai metadata" }[p.action] || p.action;
    return `${what}: ${p.models ? `${p.models.length} model(s)` : "the models a search matches"}`;
  }
  return t.kind || "task";
}

function progressText(t) {
  const p = t.progress || {};
  const done = p.done || 0;
  const parts = [];
  if (p.total) {
    parts.push(`${Math.floor((100 * done) / p.total)}%`, `${amount(done, t)} / ${amount(p.total, t)}`);
  } else if (done) {
    parts.push(amount(done, t));
  }
  if (t.state === "running" && p.rate) {
    parts.push(`${amount(p.rate, t)}/s`);
    if (p.total && done < p.total) parts.push(`ETA ${fmtDuration((p.total - done) / p.rate)}`);
  }
  if (t.state === "running" && p.connections > 1) parts.push(`${p.connections} connections`);
  return parts.join(" · ");
}

// A download over several connections: where each is in the file (one thin bar per segment at work, placed
// where it lies), under the one bar of the whole.
function segmentStrip(t) {
  const p = t.progress || {};
  const strip = h("div", { class: "segments", "aria-hidden": "true" });
  if (t.state !== "running" || !p.total || !Array.isArray(p.segments) || !p.segments.length) {
    strip.hidden = true;
    return strip;
  }
  const pct = (n) => `${(100 * n) / p.total}%`;
  // placed through the CSSOM: the page's CSP refuses style attributes
  strip.append(...p.segments.map(([start, pos, end]) => {
    const done = h("span", { class: "segment-done" });
    done.style.width = `${end > start ? (100 * (pos - start)) / (end - start) : 100}%`;
    const seg = h("span", { class: "segment" }, done);
    Object.assign(seg.style, { left: pct(start), width: pct(end - start) });
    return seg;
  }));
  return strip;
}

function summary(t) {
  const r = t.result;
  if (!r || t.state !== "succeeded") return "";
  if (t.kind === "download") return r.already_present ? "Already in the store." : "Downloaded and verified.";
  if (t.kind === "scan") return scanSummary(r);
  if (t.kind === "verify") return `${r.checked ?? 0} checked: ${r.ok ?? 0} ok, ${r.mismatch ?? 0} mismatch, ${r.invalid ?? 0} invalid.`;
  if (t.kind === "preview") return `${r.generated ?? 0} generated, ${r.skipped ?? 0} skipped, ${r.failed ?? 0} failed.`;
  if (t.kind === "workflow") return `${(r.children || []).length} model(s) fetched; the workflow's files are in place.`;
  if (t.kind === "bulk") return `${r.done ?? 0} of ${r.models ?? 0} done${r.failed ? `, ${r.failed} failed (first: ${r.errors[0].model.relpath}: ${r.errors[0].message})` : ""}.`;
  return "";
}

function scanSummary(r) {
  const parts = [`${r.files ?? 0} model${r.files === 1 ? "" : "s"}: ${r.added ?? 0} added, ${r.changed ?? 0} changed, ${r.removed ?? 0} removed, ${r.hashed ?? 0} hashed.`];
  if (r.lazy) parts.push(`${r.lazy} big files are not hashed yet (a full scan or a verify hashes them).`);
  const down = r.unreachable_roots || [];
  if (down.length) parts.push(`Unreachable, kept as they were: ${down.map((d) => d.path).join(", ")}.`);
  const busy = r.busy_roots || [];
  if (busy.length) parts.push(`Being scanned by another host: ${busy.map((d) => d.path).join(", ")}.`);
  if (r.links_skipped) {
    const shown = (r.links_sample || []).map((l) => `${l.folder}/${l.relpath}`);
    const more = r.links_skipped > shown.length ? ", …" : "";
    parts.push(`${r.links_skipped} symbolic link${r.links_skipped === 1 ? "" : "s"} not followed (${shown.join(", ")}${more}); `
      + "a folder elsewhere belongs in extra_model_paths.yaml.");
  }
  return parts.join(" ");
}

async function act(t, action) {
  try {
    if (action === "delete") {
      await api("DELETE", `/tasks/${t.id}`);
      tasks.delete(t.id);
      renderAll();
    } else {
      await api("POST", `/tasks/${t.id}/${action}`);
      toast(`${action[0].toUpperCase()}${action.slice(1)} requested for ${taskLabel(t)}.`);
      refreshTask(t.id);
    }
  } catch (err) {
    showError(err, `Could not ${action}`);
  }
}

function renderRow(t) {
  const p = t.progress || {};
  const bar = h("progress", { max: p.total || 1, value: p.total ? Math.min(p.done || 0, p.total) : (t.state === "succeeded" ? 1 : (isTerminal(t) ? 0 : null)),
    "aria-label": `Progress of ${taskLabel(t)}` });
  const buttons = actions()
    .filter((a) => allows(a, t))
    .map((a) => h("button", { type: "button", class: `small ${a === "delete" || a === "cancel" ? "secondary" : ""}`,
      dataset: { action: a }, onclick: () => act(t, a) }, ACTION_LABELS[a] || a[0].toUpperCase() + a.slice(1)));
  const err = t.error && t.state !== "succeeded"
    ? h("p", { class: "task-error", role: "note" }, h("strong", {}, t.error.code || "error"), ": ", t.error.message || "",
      " ", settingsLink(t.error.code)) : null;
  return h("li", { class: `task state-${t.state}`, dataset: { taskId: t.id, state: t.state } },
    h("div", { class: "task-head" },
      h("span", { class: "kind" }, t.kind || ""),
      h("span", { class: "label", title: (t.params && t.params.url) || "" }, taskLabel(t)),
      h("span", { class: `state badge-${t.state}` }, t.state),
    ),
    h("div", { class: "task-progress" }, bar, h("span", { class: "progress-text" }, progressText(t))),
    segmentStrip(t),
    h("div", { class: "task-meta muted" },
      t.host ? `host ${t.host}` : "not started", when(t), t.attempt > 1 ? ` · attempt ${t.attempt}` : "",
      t.pause_requested && t.state === "running" ? " · pausing…" : "",
      t.cancel_requested && t.state === "running" ? " · cancelling…" : "", " ", summary(t)),
    err,
    h("div", { class: "task-actions" }, buttons),
  );
}

// Started, finished and how long it took, in the browser's time zone.
function when(t) {
  const clock = (s) => new Date(s * 1000).toLocaleTimeString();
  if (!t.started_at) return "";
  const end = t.finished_at || (isTerminal(t) ? t.updated_at : null);
  return end ? ` · ${clock(t.started_at)} → ${clock(end)} (${fmtDuration(end - t.started_at)})`
    : ` · started ${clock(t.started_at)}`;
}

function signature(t) {
  return [t.state, t.host, t.attempt, !!t.pause_requested, !!t.cancel_requested, JSON.stringify(t.error),
    !!t.result, !!(t.progress && t.progress.total)].join("|");
}

function updateRow(row, t) {
  const p = t.progress || {};
  const bar = row.querySelector("progress");
  if (p.total) {
    bar.max = p.total;
    bar.value = Math.min(p.done || 0, p.total);
  }
  row.querySelector(".progress-text").textContent = progressText(t);
  row.querySelector(".segments").replaceWith(segmentStrip(t));
  row.querySelector(".label").textContent = taskLabel(t);
}

function matches(t, filter) {
  if (!filter) return true;
  if (filter === "active") return !isTerminal(t);
  return t.state === filter;
}

function renderList(listEl, items) {
  const rows = new Map([...listEl.children].map((li) => [li.dataset.taskId, li]));
  let prev = null;
  for (const t of items) {
    const old = rows.get(t.id);
    let row;
    if (old && old.dataset.sig === signature(t)) {
      updateRow(old, t); // same state and buttons: update in place so keyboard focus stays put
      row = old;
    } else {
      row = renderRow(t);
      row.dataset.sig = signature(t);
      if (old) old.replaceWith(row);
    }
    rows.delete(t.id);
    if (prev ? prev.nextSibling !== row : listEl.firstChild !== row) {
      if (prev) prev.after(row);
      else listEl.prepend(row);
    }
    prev = row;
  }
  for (const li of rows.values()) li.remove();
}

function sorted(filterFn) {
  return [...tasks.values()].filter(filterFn).sort((a, b) => (a.id < b.id ? 1 : -1));
}

export function renderAll() {
  const filter = document.getElementById("queue-filter").value;
  const items = sorted((t) => matches(t, filter));
  renderList(document.getElementById("tasks"), items);
  document.getElementById("queue-empty").hidden = items.length > 0;
  renderList(document.getElementById("maint-tasks"), sorted((t) => t.kind !== "download").slice(0, 10));
  const active = [...tasks.values()].filter((t) => !isTerminal(t)).length;
  const badge = document.getElementById("queue-badge");
  badge.hidden = active === 0;
  badge.textContent = String(active);
}

let pending = false;

// Remove every finished task the list shows (the records only: models stay where they are).
async function clearFinished() {
  const done = [...tasks.values()].filter((t) => isTerminal(t) && allows("delete", t));
  let failed = 0;
  for (const t of done) {
    try {
      await api("DELETE", `/tasks/${t.id}`);
      tasks.delete(t.id);
    } catch (err) {
      failed += 1;
    }
  }
  renderAll();
  toast(`${done.length - failed} finished task${done.length - failed === 1 ? "" : "s"} removed from the list`
    + (failed ? `; ${failed} could not be removed.` : "."));
}

export function initQueue() {
  // Coalesce bursts of events into one repaint per animation frame.
  onTasks(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      renderAll();
    });
  });
  document.getElementById("queue-filter").addEventListener("change", renderAll);
  document.getElementById("queue-refresh").addEventListener("click", refreshTasks);
  document.getElementById("queue-clear").addEventListener("click", clearFinished);
  document.addEventListener("depot:vocabulary", () => {
    // The filter offers every state the server names
    const select = document.getElementById("queue-filter");
    for (const s of allStates()) {
      if (!select.querySelector(`option[value="${s}"]`)) select.append(h("option", { value: s }, s));
    }
  });
}
