// Task state for every view: loaded from GET /tasks, kept live by the WebSocket (/api/v1/ws).
// A snapshot replaces what we know; events merge into it when their seq is the next one; a gap, a resync or a
// reconnect refetches, so the page never shows a stale state after a reload or a server restart.

import { askForToken, get, getToken, showError } from "./api.js";
import { isTerminal } from "./vocab.js";

export const tasks = new Map();
const listeners = new Set();
let socket = null;
let backoff = 500;
let reconnectTimer = null;

export function onTasks(fn) {
  listeners.add(fn);
}

function notify(changedIds) {
  for (const fn of listeners) fn(changedIds);
}

function setLive(state, text) {
  const el = document.getElementById("live");
  el.dataset.state = state;
  el.textContent = text;
}

// When the worker reports no rate, derive one from successive progress events (smoothed), so speed and ETA show.
function estimateRate(prev, next) {
  const now = performance.now() / 1000;
  const p = next.progress;
  if (prev && prev._seenAt && !p.rate && prev.progress && p.done > prev.progress.done) {
    const instant = (p.done - prev.progress.done) / Math.max(0.05, now - prev._seenAt);
    p.rate = prev._rate ? 0.7 * prev._rate + 0.3 * instant : instant;
  }
  next._rate = p.rate || 0;
  next._seenAt = now;
}

function mergeTask(partial) {
  const prev = tasks.get(partial.id);
  const next = prev ? { ...prev, ...partial } : { progress: { done: 0, total: null, rate: 0 }, ...partial };
  if (prev && partial.progress) next.progress = { ...prev.progress, ...partial.progress };
  if (partial.progress) estimateRate(prev, next);
  tasks.set(partial.id, next);
  return next;
}

export async function refreshTasks() {
  try {
    const body = await get("/tasks?limit=200");
    const seen = new Set();
    for (const t of body.items) {
      tasks.set(t.id, t);
      seen.add(t.id);
    }
    for (const id of [...tasks.keys()]) if (!seen.has(id) && isTerminal(tasks.get(id))) tasks.delete(id);
    notify(null);
  } catch (err) {
    showError(err, "Loading tasks");
  }
}

export async function refreshTask(id) {
  try {
    tasks.set(id, await get(`/tasks/${id}`));
  } catch (err) {
    if (err.status === 404) tasks.delete(id);
    else showError(err, "Loading a task");
  }
  notify([id]);
}

// Resolves with the task once it has finished: the live feed usually tells first, a slow poll covers a
// WebSocket that is reconnecting.
export function waitForTask(id, pollMs = 2000) {
  return new Promise((resolve) => {
    let timer = null;
    const check = () => {
      const t = tasks.get(id);
      if (t && isTerminal(t)) {
        listeners.delete(check);
        clearInterval(timer);
        resolve(t);
      }
    };
    listeners.add(check);
    timer = setInterval(() => refreshTask(id), pollMs);
    check();
  });
}


function handleEvent(ev) {
  const known = tasks.get(ev.task_id);
  if (known && ev.seq <= known.seq) return;
  if (known && ev.seq > known.seq + 1) {
    refreshTask(ev.task_id); // a gap: the record is the truth
    return;
  }
  if (ev.task && ev.task.deleted) {
    tasks.delete(ev.task_id);
  } else if (!known && ev.type !== "state") {
    refreshTask(ev.task_id); // first sight of a task through a progress/log event: fetch it whole
    return;
  } else {
    mergeTask({ ...ev.task, id: ev.task_id, seq: ev.seq });
  }
  notify([ev.task_id]);
}

// Browsers hide why a WebSocket handshake failed; the same URL over plain HTTP says 401 when the token is
// missing or wrong (and 400 "WebSocket only" otherwise).
async function probeRefusal() {
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const resp = await fetch("/api/v1/ws", { headers });
    if (resp.status === 401) {
      clearTimeout(reconnectTimer);
      setLive("down", "token needed");
      if (!(await askForToken())) showError(new Error("Live updates need the access token (Settings → Set token)."));
    }
  } catch (err) {
    // the server is down; the reconnect loop keeps trying
  }
}

function wsUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const token = getToken();
  return `${proto}//${location.host}/api/v1/ws${token ? `?token=${encodeURIComponent(token)}` : ""}`;
}

export function connect() {
  clearTimeout(reconnectTimer);
  if (socket) {
    socket.onclose = null;
    socket.close();
  }
  setLive("connecting", "connecting…");
  const ws = new WebSocket(wsUrl());
  socket = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    backoff = 500;
    setLive("live", "live");
  };
  ws.onmessage = (msg) => {
    let data;
    try {
      data = JSON.parse(msg.data);
    } catch (err) {
      return;
    }
    if (data.type === "snapshot") {
      for (const t of data.tasks) tasks.set(t.id, t);
      notify(null);
      refreshTasks(); // also picks up what finished while we were away
    } else if (data.type === "index") {
      // The store's index changed (a scan, a download, a move, a delete, an edit, from any client)
      document.dispatchEvent(new CustomEvent("depot:index", { detail: data.gen }));
    } else if (data.type === "resync") {
      setLive("connecting", "resyncing…");
    } else if (data.task_id) {
      handleEvent(data);
    }
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    if (!opened) probeRefusal();
    // The server, or the Redis behind it (a restart, a Sentinel failover), is away: the page keeps what it shows
    // and refetches everything once the socket is back.
    setLive("down", "reconnecting…");
    reconnectTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 5000);
  };
}

document.addEventListener("depot:token", () => connect());
