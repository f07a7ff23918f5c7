// The REST client, the token, toasts and formatting helpers shared by every view.

const TOKEN_KEY = "depot.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Error codes a key in Settings cures: their messages get a link there. */
export const KEY_ERRORS = new Set(["login_required", "gated_repo", "key_rejected"]);

/** A link that opens the Settings view, for an error a key would cure. */
export function settingsLink(code) {
  return KEY_ERRORS.has(code) ? h("a", { class: "settings-link", href: "#settings" }, "Open Settings") : null;
}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

// Thumbnails are <img> loads, which cannot carry a header: when reads need the token (a GET answered 401,
// DEPOT_READ_TOKEN_REQUIRED) they get ?token=; otherwise the token stays out of URLs and access logs.
let readsNeedToken = false;

export function withToken(url) {
  const token = getToken();
  if (!readsNeedToken || !token || !url) return url;
  return `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

// `/?token=...` fills the token in, then the token is removed from the address bar.
export function takeTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token) {
    setToken(token);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
}

let askingForToken = null;

// Ask once (shared by concurrent 401s); resolves true when a token was entered.
export function askForToken() {
  if (askingForToken) return askingForToken;
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  input.value = getToken();
  askingForToken = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      askingForToken = null;
      if (dialog.returnValue === "ok" && input.value.trim()) {
        setToken(input.value.trim());
        document.dispatchEvent(new CustomEvent("depot:token"));
        resolve(true);
      } else {
        resolve(false);
      }
    }, { once: true });
  });
  dialog.showModal();
  input.focus();
  return askingForToken;
}

/** ``headers``: extra request headers (an upload's ``Upload-Offset``). A refusal is an ApiError carrying the
 * server's ``details`` too. */
export async function api(method, path, body, { retried = false, headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  // A FormData body (a file upload) goes as multipart: the browser writes its Content-Type with the boundary.
  // A Blob (a file's first bytes) goes as it is, with its own type.
  const form = typeof FormData !== "undefined" && body instanceof FormData;
  const blob = typeof Blob !== "undefined" && body instanceof Blob;
  if (blob) headers["Content-Type"] = body.type || "application/octet-stream";
  else if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : form || blob ? body : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, "unreachable", "The server cannot be reached; check that Model Depot is running.");
  }
  if (resp.status === 401 && method === "GET") readsNeedToken = true;
  if (resp.status === 401 && !retried) {
    if (await askForToken()) return api(method, path, body, { retried: true, headers: extra });
  }
  // A deletion says where the model went (its trash entry), for an undo
  if (resp.status === 204) return resp.headers.get("Location") ? { location: resp.headers.get("Location") } : null;
  let data = null;
  try {
    data = await resp.json();
  } catch (err) {
    data = null;
  }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    const error = new ApiError(resp.status, e.code || `http_${resp.status}`, e.message || `The server answered ${resp.status}.`);
    error.details = e.details;
    throw error;
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);

// ---- toasts: errors are never silent ----------------------------------------------------------------

/** ``action``: an optional {label, run} button (an undo), which closes the toast when pressed. */
export function toast(message, kind = "info", action = null) {
  const box = document.getElementById("toasts");
  const el = document.createElement("div");
  el.className = `toast ${kind}`;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  el.textContent = message;
  if (action) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small toast-action";
    button.textContent = action.label;
    button.onclick = () => { el.remove(); action.run(); };
    el.append(" ", button);
  }
  const close = document.createElement("button");
  close.type = "button";
  close.className = "close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.onclick = () => el.remove();
  el.append(close);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" || action ? 12000 : 4000);
}

export function showError(err, context = "") {
  const prefix = context ? `${context}: ` : "";
  toast(`${prefix}${err.message || err}`, "error");
}

// ---- DOM and formatting helpers ----------------------------------------------------------------------

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "?";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${units[i]}`;
}

export function fmtDuration(s) {
  if (!isFinite(s) || s < 0) return "";
  s = Math.round(s);
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

export function fmtTime(epoch) {
  if (!epoch) return "";
  return new Date(epoch * 1000).toLocaleString();
}

export function modelPath(m) {
  return `${encodeURIComponent(m.folder)}/${m.path_index}/${m.relpath.split("/").map(encodeURIComponent).join("/")}`;
}

// Run `fn` on a confirmation dialog's OK. `extra` is an optional element (e.g. a form) shown in the dialog.
export function confirmDialog(text, extra = null, okLabel = "OK") {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  const box = document.getElementById("confirm-extra");
  box.replaceChildren(...(extra ? [extra] : []));
  document.getElementById("confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}
