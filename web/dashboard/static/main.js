// Entry point: the token from the URL, hash routing between views, vocabulary, the live task feed.

import { get, h, showError, takeTokenFromUrl } from "./api.js";
import { initAdd } from "./add.js";
import { initLibrary, loadFolders } from "./library.js";
import { connect, refreshTasks } from "./live.js";
import { initHosts, initMaintenance, initSettings, loadHosts, loadKeys } from "./panels.js";
import { initQueue, renderAll } from "./queue.js";
import { initTrash, loadTrash } from "./trash.js";
import { setVocabulary } from "./vocab.js";
import { initWorkflows } from "./workflows.js";

const VIEWS = ["library", "add", "workflows", "queue", "maintenance", "settings", "hosts"];
const loaders = { settings: loadKeys, hosts: loadHosts, queue: renderAll, maintenance: loadTrash };

function route() {
  const name = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "library";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.dataset.view !== name;
  for (const tab of document.querySelectorAll(".tabs a")) {
    tab.setAttribute("aria-selected", String(tab.dataset.view === name));
  }
  if (loaders[name]) loaders[name]();
}

// A banner while the stack cannot run jobs (no live worker, Redis away): without it, tasks would sit in
// "queued" with no explanation. Presence is refreshed by workers every few seconds, so polling is enough.
const HEALTH_POLL_MS = 10000;

async function checkHealth() {
  const banner = document.getElementById("health-banner");
  let health;
  try {
    health = await get("/health");
  } catch (err) {
    health = { status: "degraded", reason: err.status === 503 && err.message ? err.message : "The server is not answering." };
  }
  const reason = health.status === "ok" ? "" : (health.reason || "The server reports a problem.");
  // `command` spans in the reason are shown as code.
  banner.replaceChildren(...reason.split("`").map((part, i) => (i % 2 ? h("code", {}, part) : part)));
  banner.hidden = !reason;
}

async function start() {
  takeTokenFromUrl();
  initQueue();
  initLibrary();
  initAdd();
  initMaintenance();
  initHosts();
  initWorkflows();
  initTrash();
  window.addEventListener("hashchange", route);
  try {
    setVocabulary(await get("/vocabulary"));
  } catch (err) {
    showError(err, "Loading the state vocabulary");
  }
  let info = null;
  try {
    info = await get("/settings");
  } catch (err) {
    info = null; // optional endpoint
  }
  initSettings(info);
  if (info && info.store) document.getElementById("empty-store").textContent = info.store;
  route();
  connect();
  await Promise.all([refreshTasks(), loadFolders(), checkHealth()]);
  setInterval(checkHealth, HEALTH_POLL_MS);
  document.body.dataset.ready = "1";
}

start();
