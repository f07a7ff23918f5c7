// The task-state vocabulary (GET /vocabulary): which states are final, which control actions each state allows.
// The server is the one place that names them; the dashboard loads them before it shows any task.

let terminal = new Set();
let control = {};
let states = [];

export function setVocabulary(vocab) {
  terminal = new Set(vocab.terminal);
  control = vocab.control;
  states = vocab.states;
  document.dispatchEvent(new CustomEvent("depot:vocabulary"));
}

// Every state a task can be in, in the server's order.
export function allStates() {
  return states;
}

export function isTerminal(t) {
  return terminal.has(t.state);
}

// The control actions the server names (pause, resume, cancel, retry, delete), in its order.
export function actions() {
  return Object.keys(control);
}

// Whether a control action (pause, resume, cancel, retry, delete) is allowed in the task's state.
export function allows(action, t) {
  return (control[action] || []).includes(t.state);
}
