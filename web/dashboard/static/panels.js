// Maintenance (scan / verify / preview jobs, duplicates), Settings (masked keys, NSFW level, token) and Hosts.

import { api, askForToken, fmtBytes, get, getToken, h, modelPath, post, setToken, showError, toast, withToken } from "./api.js";
import { refreshTask } from "./live.js";

// ---- maintenance ----------------------------------------------------------------------------------------

const JOBS = {
  "scan-quick": ["/scans", (folder, pathIndex) => ({ folder, path_index: pathIndex, mode: "quick", fetch_metadata: false }), "Quick scan"],
  "scan-full": ["/scans", (folder, pathIndex) => ({ folder, path_index: pathIndex, mode: "full", fetch_metadata: true }), "Full scan"],
  verify: ["/verifications", (folder) => ({ folder }), "Verification"],
  previews: ["/previews/regenerate", (folder) => ({ folder, source: "auto" }), "Preview regeneration"],
  updates: ["/bulk", (folder) => ({ action: "updates", query: folder ? { folder } : {} }), "Update check"],
};

// The chosen folder, and the root when one root of it was chosen ("loras#1"); only scans narrow to a root.
function maintTarget() {
  const [folder, root] = document.getElementById("maint-folder").value.split("#");
  return { folder: folder || undefined, pathIndex: root === undefined ? undefined : Number(root) };
}

async function startJob(name) {
  const [path, body, label] = JOBS[name];
  const { folder, pathIndex } = maintTarget();
  try {
    const task = await post(path, body(folder, pathIndex));
    toast(`${label} started.`);
    refreshTask(task.id);
  } catch (err) {
    showError(err, `${label} could not start`);
  }
}

async function loadDuplicates() {
  const box = document.getElementById("dupes");
  box.textContent = "Looking…";
  const { folder } = maintTarget();
  try {
    const groups = await get(`/duplicates${folder ? `?folder=${encodeURIComponent(folder)}` : ""}`);
    if (!groups.length) {
      box.textContent = "No duplicates among hashed files.";
      return;
    }
    box.replaceChildren(...groups.map((g) => h("div", { class: "dupe" },
      h("code", { class: "hash" }, g.sha256),
      h("ul", {}, g.models.map((m) => h("li", {}, `${m.folder}/${m.relpath} `, h("span", { class: "muted" }, fmtBytes(m.size))))))));
  } catch (err) {
    box.textContent = err.message;
    if (err.status !== 404) showError(err, "Duplicates");
  }
}

export function initMaintenance() {
  for (const b of document.querySelectorAll("[data-job]")) b.addEventListener("click", () => startJob(b.dataset.job));
  document.getElementById("dupes-refresh").addEventListener("click", loadDuplicates);
}

// ---- settings --------------------------------------------------------------------------------------------

export async function loadKeys() {
  try {
    const keys = await get("/settings/keys");
    for (const name of ["civitai", "huggingface"]) {
      document.getElementById(`mask-${name}`).textContent = keys[name] || "not set";
    }
  } catch (err) {
    for (const name of ["civitai", "huggingface"]) document.getElementById(`mask-${name}`).textContent = "unavailable";
    if (err.status !== 404) showError(err, "Loading keys");
  }
  document.getElementById("token-state").textContent = getToken()
    ? "A token is saved in this browser." : "No token saved in this browser.";
}

async function saveKey(name, value) {
  const said = document.getElementById(`check-${name}`);
  said.classList.remove("rejected");
  said.textContent = value ? "Checking the key with the service…" : "";
  try {
    const answer = await api("PUT", `/settings/keys/${name}`, { value });
    document.getElementById(`mask-${name}`).textContent = answer.value || "not set";
    document.getElementById(`key-${name}`).value = "";
    said.textContent = answer.check ? answer.check.message : "";
    toast(value ? `${name} key saved.` : `${name} key cleared.`);
    loadKeys();
  } catch (err) {
    if (err.code !== "key_rejected") {
      said.textContent = "";
      showError(err, `Saving the ${name} key`);
      return;
    }
    // Rejected by the service: said beside the key, which stays in the field to be corrected
    said.textContent = `Rejected: ${err.message}`;
    said.classList.add("rejected");
  }
}

let flowerPort = 5555;

export function initSettings(settingsInfo) {
  if (settingsInfo && settingsInfo.flower_port) flowerPort = settingsInfo.flower_port;
  document.getElementById("token-need").textContent = !settingsInfo ? "" : settingsInfo.token_required
    ? `This server has an access token (DEPOT_API_TOKEN): every change needs it${settingsInfo.read_token_required
      ? ", and so does reading" : "; reading does not"}. Ask whoever runs the server for it and save it here.`
    : "This server has no access token, so this browser needs none: anyone who can reach the server can change "
      + "the store. Whoever runs it can set DEPOT_API_TOKEN to require one.";
  for (const b of document.querySelectorAll("[data-save]")) {
    b.addEventListener("click", () => {
      const value = document.getElementById(`key-${b.dataset.save}`).value.trim();
      if (!value) {
        showError(new Error("Type the key first (or use Clear to remove it)."));
        return;
      }
      saveKey(b.dataset.save, value);
    });
  }
  for (const b of document.querySelectorAll("[data-clear]")) b.addEventListener("click", () => saveKey(b.dataset.clear, null));
  document.getElementById("token-change").addEventListener("click", async () => {
    await askForToken();
    loadKeys();
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    setToken("");
    loadKeys();
  });
  initNsfw(settingsInfo);
}

// The NSFW ceiling is one preference for every host; the server's DEPOT_NSFW_LEVEL stays its default.
function initNsfw(settingsInfo) {
  const select = document.getElementById("nsfw-level");
  const note = document.getElementById("nsfw-default");
  if (!settingsInfo || !settingsInfo.nsfw_levels) {
    select.disabled = true;
    note.textContent = "(unavailable)";
    return;
  }
  const show = (info) => {
    select.value = String(info.nsfw_level);
    const def = info.nsfw_levels.find((l) => l.value === info.nsfw_level_default);
    note.textContent = `applies to every host; server default ${def ? def.name : info.nsfw_level_default}`;
  };
  select.replaceChildren(...settingsInfo.nsfw_levels.map((l) => h("option", { value: String(l.value) }, `${l.name} (${l.value})`)));
  show(settingsInfo);
  select.addEventListener("change", async () => {
    try {
      const info = await api("PUT", "/settings/nsfw_level", { value: Number(select.value) });
      show({ ...settingsInfo, ...info });
      toast(`Previews now go up to ${select.selectedOptions[0].textContent}.`);
    } catch (err) {
      showError(err, "Saving the NSFW level");
      try {
        show({ ...settingsInfo, ...(await get("/settings")) });
      } catch (_) { /* the error above already says what went wrong */ }
    }
  });
}

// ---- hosts -----------------------------------------------------------------------------------------------

export async function loadHosts() {
  const box = document.getElementById("hosts");
  const line = document.getElementById("health-line");
  let health;
  try {
    health = await get("/health");
  } catch (err) {
    line.textContent = `Health check failed: ${err.message}`;
    box.replaceChildren();
    return;
  }
  line.textContent = `Redis: ${health.redis} · web host: ${health.host || "?"} · ${health.workers.length} worker(s)`;
  const byHost = new Map();
  for (const w of health.workers) {
    if (!byHost.has(w.host)) byHost.set(w.host, []);
    byHost.get(w.host).push(w);
  }
  const yamlLink = (host, preferStore) => h("a", {
    class: "button-link small secondary", download: `extra_model_paths-${host}.yaml`,
    href: withToken(`/api/v1/comfyui/extra_model_paths.yaml?${new URLSearchParams({ host, ...(preferStore ? { default: "1" } : {}) })}`),
  }, preferStore ? "extra_model_paths.yaml (store first)" : "extra_model_paths.yaml");
  box.replaceChildren(...(byHost.size ? [...byHost].map(([host, ws]) => h("div", { class: "host" },
    h("h3", {}, host, " ", yamlLink(host, false), " ", yamlLink(host, true)),
    h("ul", {}, ws.map((w) => h("li", {}, h("strong", {}, w.name), " ",
      h("span", { class: "muted" }, (w.queues || []).join(", ")), " ",
      h("span", { class: "muted" }, w.seen ? `· heartbeat ${Math.max(0, Math.round(Date.now() / 1000 - w.seen))} s ago` : "")))))) :
    [h("p", { class: "muted" }, "No worker is running. Start one with `depot worker` (or `make up`).")]));
  const flower = document.getElementById("flower-link");
  flower.href = `${location.protocol}//${location.hostname}:${flowerPort}/`;
  flower.textContent = `Open Flower (worker monitor, port ${flowerPort})`;
}

export function initHosts() {
  document.getElementById("hosts-refresh").addEventListener("click", loadHosts);
}

export { modelPath };
