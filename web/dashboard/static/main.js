// Entry point: the token from the URL, hash routing between views, vocabulary, the live task feed.

import { get, showError, takeTokenFromUrl } from "./api.js";
import { initAdd } from "./add.js";
import { initLibrary, loadFolders } from "./library.js";
import { connect, refreshTasks } from "./live.js";
import { initHosts, initMaintenance, initSettings, loadHosts, loadKeys } from "./panels.js";
import { initQueue, renderAll, setVocabulary } from "./queue.js";

const VIEWS = ["library", "add", "queue", "maintenance", "settings", "hosts"];
const loaders = { settings: loadKeys, hosts: loadHosts, queue: renderAll };

function route() {
  const name = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "library";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.dataset.view !== name;
  for (const tab of document.querySelectorAll(".tabs a")) {
    tab.setAttribute("aria-selected", String(tab.dataset.view === name));
  }
  if (loaders[name]) loaders[name]();
}

async function start() {
  takeTokenFromUrl();
  initQueue();
  initLibrary();
  initAdd();
  initMaintenance();
  initHosts();
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
  route();
  connect();
  await Promise.all([refreshTasks(), loadFolders()]);
  document.body.dataset.ready = "1";
}

start();
