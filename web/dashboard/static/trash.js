// The trash (Maintenance): what was deleted and is still restorable, newest first, with when each is emptied;
// Restore puts a model back where it was (refused, with the reason, when its path was taken since), "Delete
// for good" removes it now. Loaded when the Maintenance view opens and after any index change while it is open.

import { api, confirmDialog, fmtBytes, fmtTime, get, h, showError, toast } from "./api.js";
import { restore } from "./detail.js";

function days(seconds) {
  const d = Math.max(0, Math.ceil(seconds / 86400));
  return d <= 1 ? "within a day" : `in ${d} days`;
}

export async function loadTrash() {
  const box = document.getElementById("trash");
  let entries;
  try {
    entries = await get("/trash");
  } catch (err) {
    box.replaceChildren(h("p", { class: "task-error" }, err.message));
    return;
  }
  if (!entries.length) {
    box.replaceChildren(h("p", { class: "muted" }, "The trash is empty. Deleted models wait here before they are gone for good."));
    return;
  }
  const now = Date.now() / 1000;
  box.replaceChildren(h("ul", { class: "trash-list" }, entries.map((e) => h("li", { dataset: { id: e.id } },
    h("span", { class: "trash-name" }, `${e.folder}/${e.relpath}`),
    h("span", { class: "muted" }, `${fmtBytes(e.size)} · deleted ${fmtTime(e.deleted_at)} · gone for good ${days(e.expires_at - now)}`),
    h("span", { class: "row" },
      h("button", { type: "button", class: "small", onclick: async () => { await restore(`/trash/${e.id}`); loadTrash(); } }, "Restore"),
      h("button", { type: "button", class: "small danger", onclick: () => removeForGood(e) }, "Delete for good"))))));
}

async function removeForGood(e) {
  if (!(await confirmDialog(`Delete ${e.folder}/${e.relpath} for good? This cannot be undone.`, null, "Delete for good"))) return;
  try {
    await api("DELETE", `/trash/${e.id}`);
    toast(`Deleted ${e.relpath} for good.`);
  } catch (err) {
    showError(err, "Delete failed");
  }
  loadTrash();
}

export function initTrash() {
  document.addEventListener("depot:index", () => {
    if (!document.getElementById("trash").closest(".view").hidden) loadTrash();
  });
}
