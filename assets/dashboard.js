// raftix dashboard: polls /api/status, /api/logs, /v1/kv, /v1/regions/status and
// /v1/conflicts/stats, renders them, and posts commands to /api/command. Plain DOM, no dependencies; every user-supplied string goes in as text.
"use strict";

const POLL_MS = 500;
const FETCH_TIMEOUT_MS = 1500;
const LOG_LIMIT = 40;
const KV_LIMIT = 50;
// Values longer than this are cut by the node (the log view's are cut at the same size).
const VALUE_BYTES = 256;

const $ = (id) => document.getElementById(id);
// The latest status each node answered, shown (dimmed) on its card once it stops answering.
const lastSeen = new Map();
// When each node last answered (ms since the epoch), for "last seen 12 s ago" on a down node.
const lastSeenAt = new Map();

// Builds an element: el("td", {class: "x", "data-k": 1}, "text", childNode, ...).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Access control: when the API answers 401 the token form is shown; the token is kept in
// sessionStorage (this tab only) and sent as a bearer token on every request.
const TOKEN_KEY = "raftix-token";
const storedToken = () => sessionStorage.getItem(TOKEN_KEY) || "";

function askForToken(message) {
  const form = $("token-form");
  if (!form || !form.hidden) return;
  $("token-message").textContent = message || "This cluster needs an access token.";
  form.hidden = false;
  $("token-input").focus();
}

function setupTokenForm() {
  const form = $("token-form");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    $("token-input").value = "";
    form.hidden = true;
  });
}

async function getJson(url, options) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
  const headers = { ...((options && options.headers) || {}) };
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const resp = await fetch(url, { cache: "no-store", signal: abort.signal, ...options, headers });
    const body = await resp.json().catch(() => ({ error: "bad_answer", message: resp.statusText }));
    // A refusal of a request sent before the user entered a new token says nothing about
    // the new token: only ask again when the token used is still the current one.
    if (resp.status === 401 && token === storedToken()) {
      askForToken(token ? "The token was refused: enter another one." : "This cluster needs an access token.");
    }
    return { ok: resp.ok, status: resp.status, body };
  } finally {
    clearTimeout(timer);
  }
}

const show = (v) => (v === null || v === undefined ? "–" : v);

// 3725 -> "1 h 2 min", 42 -> "42 s".
function duration(secs) {
  if (secs === null || secs === undefined) return "–";
  if (secs < 120) return `${Math.round(secs)} s`;
  if (secs < 7200) return `${Math.floor(secs / 60)} min`;
  if (secs < 172800) return `${Math.floor(secs / 3600)} h ${Math.floor((secs % 3600) / 60)} min`;
  return `${Math.floor(secs / 86400)} d`;
}

// 1536000 -> "1.5 MiB".
function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = [["GiB", 1 << 30], ["MiB", 1 << 20], ["KiB", 1 << 10]];
  const unit = units.find(([, size]) => n >= size);
  return unit ? `${(n / unit[1]).toFixed(1)} ${unit[0]}` : `${n} B`;
}

// "… (1.0 MiB in all)" after a value the node cut, else nothing.
function cutNote(size) {
  if (size === undefined || size === null) return "";
  const units = [["GiB", 1 << 30], ["MiB", 1 << 20], ["KiB", 1 << 10]];
  const unit = units.find(([, n]) => size >= n);
  return `… (${unit ? `${(size / unit[1]).toFixed(1)} ${unit[0]}` : `${size} bytes`} in all)`;
}

function describeCommand(entry) {
  if (entry.type === "noop") return "no-op (new leader's first entry)";
  const c = entry.command || {};
  if (entry.type === "config") {
    const ids = (list) => `[${(list || []).join(", ")}]`;
    return `CONFIG voters ${ids(c.voters)} learners ${ids(c.learners)}`;
  }
  const value = (v, b64, size) =>
    (v !== null && v !== undefined ? JSON.stringify(v) : b64 ? "<binary>" : "null") + cutNote(size);
  switch (c.op) {
    case "put": return `PUT ${c.key} = ${value(c.value, c.value_base64, c.value_size)}`;
    case "delete": return `DELETE ${c.key}`;
    case "cas": return `CAS ${c.key}: ${value(c.expected, c.expected_base64, c.expected_size)} -> ${value(c.value, c.value_base64, c.value_size)}`;
    case "token_put": return `TOKEN PUT ${c.name} (${c.role}${c.prefix ? `, prefix ${c.prefix}` : ""})`;
    case "token_delete": return `TOKEN DELETE ${c.name}`;
    case "region": return `REGION ${c.change || ""}`;
    case "region_apply": return `REGION APPLY from ${c.from}: ${c.mutations} mutation(s)${c.seqs ? `, seq ${c.seqs}` : ""}`;
    case "region_acked": return `REGION ACKED by ${c.region} up to seq ${c.seq}`;
    case "txn": return `TXN ${(c.ops || []).map((o) => `${o.op.toUpperCase()} ${o.key}`).join(", ")}` +
      ((c.guards || []).length ? ` if ${c.guards.length} guard(s)` : "");
    case "unknown": return `UNKNOWN ${c.raw !== null && c.raw !== undefined ? c.raw : "<binary>"}`;
    default: return `${c.op || "entry"} ${JSON.stringify(c)}`;
  }
}

function nodeCard(node, member, leader) {
  const leaderId = leader ? leader.id : null;
  const down = Boolean(node.error);
  const role = down ? "DOWN" : node.role;
  const card = el("div", {
    class: "node-card", "data-node-id": node.id, "data-role": role,
    "data-health": down ? "down" : "up", "data-leader": !down && node.id === leaderId,
  });
  const title = el("span", { class: "node-title" },
    el("span", { class: `dot ${down ? "down" : "up"}`, title: down ? "unreachable" : "healthy" }),
    `Node ${node.id}`, member && member.is_self ? el("span", { class: "subtle" }, " (this)") : null);
  const learner = member && member.suffrage === "learner";
  if (learner) card.setAttribute("data-suffrage", "learner");
  card.append(el("div", { class: "node-head" }, title,
    el("span", {},
      learner ? el("span", { class: "badge LEARNER", title: "receives the log, never votes" }, "LEARNER") : null,
      el("span", { class: `badge ${role}` }, role))));
  card.append(el("div", { class: "node-addr" }, show(node.http_addr)));
  const known = down ? lastSeen.get(node.id) : node;
  const rows = [];
  if (down) {
    const at = lastSeenAt.get(node.id);
    const ago = at ? `unreachable; last seen ${duration((Date.now() - at) / 1000)} ago:` : "unreachable";
    card.append(el("div", { class: "node-seen", "data-field": "last-seen" }, known ? ago : "unreachable"));
  }
  if (!down && node.health) {
    const state = node.health.state;
    card.setAttribute("data-state", state);
    card.append(el("div", { class: `health ${state}`, title: node.health.reason || state },
      state, node.health.reason ? el("span", { class: "health-reason" }, ` — ${node.health.reason}`) : null));
  }
  if (known) {
    rows.push(["term", known.term], ["leader", show(known.leader)], ["commit", known.commit],
      ["applied", known.applied], ["last log", `${known.last_log_index} (t${known.last_log_term})`]);
  }
  if (!down && node.version) {
    rows.push(["version", node.version], ["uptime", duration(node.uptime_secs)]);
    if (node.disk) rows.push(["disk", `${bytes(node.disk.data_dir_bytes)} (log ${bytes(node.disk.log_bytes)}, state ${bytes(node.disk.state_machine_bytes)})`]);
  }
  const progress = leader && leader.peers ? leader.peers[node.id] : null;
  if (progress) rows.push(["lag", `${progress.lag} entr${progress.lag === 1 ? "y" : "ies"}`]);
  const dl = el("dl");
  for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", { "data-field": k }, show(v)));
  card.append(dl);
  if (down) card.append(el("div", { class: "node-note" }, node.message || "no answer"));
  return card;
}

function renderStatus(status) {
  $("summary-leader").textContent = show(status.leader);
  $("summary-term").textContent = show(status.term);
  $("summary-node").textContent = show(status.node);
  const members = new Map((status.cluster.members || []).map((m) => [m.id, m]));
  const fromLeader = status.leader_cluster || { members: [] };
  const leaderMembers = new Map((fromLeader.members || []).map((m) => [m.id, m]));
  for (const n of status.nodes) {
    if (!n.error) {
      lastSeen.set(n.id, n);
      lastSeenAt.set(n.id, Date.now());
    }
  }
  renderQuorum(status);
  renderActions(status, members);
  const leader = status.nodes.find((n) => !n.error && n.id === status.leader);
  const cards = status.nodes.map((n) => nodeCard(n, members.get(n.id), leader));
  $("nodes").replaceChildren(...cards);
  renderReplication(status, leaderMembers);
}

// "quorum OK, tolerates 1 more failure" or "NO QUORUM: 1 of 3 voters reachable, 2 needed".
function renderQuorum(status) {
  const voters = (status.cluster.members || []).filter((m) => m.suffrage !== "learner").map((m) => m.id);
  const up = status.nodes.filter((n) => !n.error && voters.includes(n.id)).length;
  const needed = Math.floor(voters.length / 2) + 1;
  const box = $("summary-quorum");
  if (!voters.length) {
    box.textContent = "quorum ?";
    box.dataset.state = "unknown";
  } else if (up >= needed) {
    const spare = up - needed;
    box.textContent = `quorum OK, tolerates ${spare} more failure${spare === 1 ? "" : "s"}`;
    box.dataset.state = "ok";
  } else {
    box.textContent = `NO QUORUM: ${up} of ${voters.length} voters reachable, ${needed} needed`;
    box.dataset.state = "lost";
  }
}

function renderReplication(status, members) {
  const leader = status.nodes.find((n) => !n.error && n.id === status.leader);
  const body = $("replication-view").tBodies[0];
  if (!leader) {
    $("replication-from").textContent = "(no leader)";
    body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 7 }, "No leader right now.")));
    return;
  }
  $("replication-from").textContent = `as seen by leader ${leader.id}, last index ${leader.last_log_index}`;
  const rows = Object.entries(leader.peers || {}).map(([id, p]) => {
    const m = members.get(Number(id)) || {};
    const pct = leader.last_log_index ? Math.round((100 * p.match_index) / leader.last_log_index) : 100;
    const bar = el("div", { class: `bar${p.lag > 0 ? " behind" : ""}` }, el("span", { style: `width:${pct}%` }));
    const ack = m.last_ack_ms_ago !== null && m.last_ack_ms_ago !== undefined ? `${m.last_ack_ms_ago} ms ago` : "–";
    const rtt = m.rtt_ms !== null && m.rtt_ms !== undefined ? `${Number(m.rtt_ms).toFixed(2)} ms` : "–";
    return el("tr", { "data-peer-id": id, "data-lag": p.lag },
      el("td", {}, `node ${id}`), el("td", {}, p.match_index), el("td", {}, p.next_index),
      el("td", {}, p.lag), el("td", {}, bar), el("td", {}, ack), el("td", {}, rtt));
  });
  body.replaceChildren(...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: 7 }, "No followers."))]));
}

function renderLog(log) {
  $("log-info").textContent = `node ${log.node}: entries ${log.first_index}–${log.last_index}, commit ${log.commit}`;
  const rows = log.entries.slice().reverse().map((e) =>
    el("tr", { "data-index": e.index, "data-committed": e.committed },
      el("td", {}, e.index), el("td", {}, e.term), el("td", { class: "entry" }, describeCommand(e)),
      el("td", { class: e.committed ? "state-committed" : "" }, e.committed ? "✓ committed" : "pending")));
  $("log-view").tBodies[0].replaceChildren(...(rows.length ? rows
    : [el("tr", { class: "empty" }, el("td", { colspan: 4 }, "The log is empty."))]));
}

// The key browser: the prefix typed, the `after` cursors of the pages before this one, this
// page's cursor and the next one's (null on the last page).
const kvState = { prefix: "", before: [], after: null, next: null };
// What the key table was last drawn from (redrawn only when it changes, like the actions).
let kvDrawn = "";

function kvUrl() {
  const q = new URLSearchParams({ limit: KV_LIMIT, max_value_bytes: VALUE_BYTES });
  if (kvState.prefix) q.set("prefix", kvState.prefix);
  if (kvState.after !== null) q.set("after", kvState.after);
  return `/v1/kv?${q}`;
}

const keyPath = (key) => `/v1/kv/${encodeURIComponent(key)}`;

// The size of a listed value in bytes: the node's whole size when it cut the value.
function sizeOf(item) {
  if (item.value_size !== undefined && item.value_size !== null) return item.value_size;
  if (item.value !== null && item.value !== undefined) return new TextEncoder().encode(item.value).length;
  const b64 = item.value_base64 || "";
  return Math.floor((b64.length * 3) / 4) - (b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0);
}

function renderKv(page) {
  kvState.next = page.next;
  $("kv-prev").disabled = kvState.before.length === 0;
  $("kv-next").disabled = !page.next;
  const armedKey = armed && armed.until > Date.now() ? armed.key : null;
  const drawn = JSON.stringify([page.items, armedKey]);
  $("kv-count").textContent = `${page.items.length}${page.next ? "+" : ""} key(s)` +
    `${kvState.prefix ? ` under ${JSON.stringify(kvState.prefix)}` : ""}, page ${kvState.before.length + 1}, applied index ${page.applied}`;
  if (drawn === kvDrawn) return;
  kvDrawn = drawn;
  const used = new Set();
  const button = (kind, key, text, extra) => {
    used.add(`kv:${kind}:${key}`);
    return keptButton(`kv:${kind}:${key}`, { class: "action", "data-kv": kind, "data-key": key, ...extra }, text);
  };
  const rows = page.items.map((item) => {
    const del = `delete-key:${item.key}`;
    return el("tr", { "data-key": item.key },
      el("td", {}, item.key),
      el("td", { class: "value" },
        (item.value !== null && item.value !== undefined ? item.value : `<binary ${item.value_base64}>`) +
        cutNote(item.value_size)),
      el("td", { "data-field": "size" }, bytes(sizeOf(item))),
      el("td", { class: "kv-actions" },
        button("view", item.key, "View"),
        button("edit", item.key, "Edit"),
        button("delete", item.key, del === armedKey ? "Confirm delete?" : "Delete", {
          class: `action${del === armedKey ? " armed" : ""}`, "data-armed": del === armedKey,
        })));
  });
  pruneButtons("kv:", used);
  const empty = kvState.prefix ? `No keys start with ${JSON.stringify(kvState.prefix)}.` : "No keys yet: try SET greeting hello world";
  $("kv-view").tBodies[0].replaceChildren(...(rows.length ? rows
    : [el("tr", { class: "empty" }, el("td", { colspan: 4 }, empty))]));
}

// A key's whole value as text (the listing cuts long ones), or a note when it is not text.
async function fullValue(key) {
  const headers = {};
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const resp = await fetch(keyPath(key), { cache: "no-store", headers });
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    throw new Error(`${body.error || resp.status}: ${body.message || resp.statusText}`);
  }
  const raw = new Uint8Array(await resp.arrayBuffer());
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch (_) {
    throw new Error(`the value of ${key} is ${bytes(raw.length)} of binary data: read it with raftix get`);
  }
}

function kvHistory(label, result) {
  const b = result.body || {};
  const text = result.ok ? `committed at index ${b.index}, term ${b.term}` : `${b.error || result.status}: ${b.message || ""}`;
  $("command-history").prepend(el("li", { class: result.ok ? "ok" : "error", "data-ok": result.ok },
    el("span", { class: "cmd" }, label), " → ", text));
}

$("kv-view").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-kv]");
  if (!button) return;
  const key = button.dataset.key;
  const full = $("kv-full");
  try {
    if (button.dataset.kv === "view") {
      full.textContent = `${key} =\n${await fullValue(key)}`;
      full.hidden = false;
    } else if (button.dataset.kv === "edit") {
      $("kv-edit-key").value = key;
      $("kv-edit-value").value = await fullValue(key);
      $("kv-edit-value").focus();
    } else if (button.dataset.kv === "delete") {
      kvDrawn = "";
      if (!confirmed(`delete-key:${key}`)) {
        button.textContent = "Confirm delete?";
        button.dataset.armed = "true";
        return;
      }
      kvHistory(`delete ${key}`, await getJson(keyPath(key), { method: "DELETE" }));
    }
  } catch (err) {
    full.textContent = String(err.message || err);
    full.hidden = false;
  }
  refresh().catch(() => {});
});

$("kv-editor").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("kv-edit-key").value;
  if (!key) return;
  const value = $("kv-edit-value").value;
  const result = await getJson(keyPath(key), { method: "PUT", body: value })
    .catch((err) => ({ ok: false, status: 0, body: { error: "network", message: String(err) } }));
  kvHistory(`save ${key}`, result);
  refresh().catch(() => {});
});

$("kv-prefix").addEventListener("input", () => {
  kvState.prefix = $("kv-prefix").value;
  kvState.before = [];
  kvState.after = null;
  refresh().catch(() => {});
});
$("kv-filter").addEventListener("submit", (event) => event.preventDefault());
$("kv-next").addEventListener("click", () => {
  if (!kvState.next) return;
  kvState.before.push(kvState.after);
  kvState.after = kvState.next;
  refresh().catch(() => {});
});
$("kv-prev").addEventListener("click", () => {
  if (!kvState.before.length) return;
  kvState.after = kvState.before.pop();
  refresh().catch(() => {});
});

// Multi-region: one row per link to a remote region (the leader's view). The Regions and
// Conflicts panels stay hidden while the node has no region (`raftix serve` without --region).
function renderRegions(status) {
  const active = status.local !== null && status.local !== undefined;
  $("regions-panel").hidden = !active;
  $("conflicts-panel").hidden = !active;
  if (!active) return;
  const primary = status.primary ? `, primary ${status.primary}` : "";
  const mode = status.replication ? `, writes ${status.replication.mode}` : "";
  $("regions-info").textContent = `region ${status.local}${primary}${mode}`;
  const rows = (status.regions || []).map((r) => {
    const lagS = typeof r.lag_seconds === "number" ? r.lag_seconds.toFixed(1) : "–";
    return el("tr", { "data-region": r.id, "data-connected": r.connected, "data-lag": r.lag_entries },
      el("td", {}, r.id, r.primary ? el("span", { class: "subtle" }, " (primary)") : null),
      el("td", { class: r.connected ? "state-committed" : "state-down" }, r.connected ? "✓ connected" : "✗ not connected"),
      el("td", { "data-field": "lag_entries" }, show(r.lag_entries)),
      el("td", { "data-field": "lag_seconds" }, lagS),
      el("td", { "data-field": "last_acked_seq" }, show(r.last_acked_seq)),
      el("td", { "data-field": "last_seq" }, show(r.last_seq)),
      el("td", { "data-field": "applied_from_seq" }, show(r.applied_from_seq)),
      el("td", { "data-field": "last_error", class: "entry" }, show(r.last_error)));
  });
  $("regions-view").tBodies[0].replaceChildren(...(rows.length ? rows
    : [el("tr", { class: "empty" }, el("td", { colspan: 8 }, "No remote region: add one with raftix region add."))]));
}

function renderConflicts(stats) {
  $("conflicts-info").textContent =
    `${stats.total} resolved, ${stats.failed} failed merge(s), ${stats.unresolved} key(s) with siblings`;
  $("conflicts-panel").dataset.total = stats.total;
  $("conflicts-panel").dataset.unresolved = stats.unresolved;
  const rows = Object.entries(stats.by_strategy || {}).map(([strategy, n]) =>
    el("tr", { "data-strategy": strategy }, el("td", {}, strategy), el("td", {}, n)));
  $("conflicts-view").tBodies[0].replaceChildren(...(rows.length ? rows
    : [el("tr", { class: "empty" }, el("td", { colspan: 2 }, "No conflict so far."))]));
}

function setConnection(state, text) {
  const conn = $("connection");
  conn.dataset.state = state;
  conn.className = `conn ${state === "ok" ? "conn-ok" : state === "lost" ? "conn-lost" : "conn-wait"}`;
  conn.textContent = text;
  conn.title = text;
}

async function refresh() {
  const [status, log, kv, regions, conflicts] = await Promise.allSettled([
    getJson("/api/status"), getJson(`/api/logs?limit=${LOG_LIMIT}`), getJson(kvUrl()),
    getJson("/v1/regions/status"), getJson("/v1/conflicts/stats"),
  ]);
  const problems = [];
  const take = (name, result, render) => {
    if (result.status !== "fulfilled") return problems.push(`${name}: ${result.reason}`);
    if (!result.value.ok) return problems.push(`${name}: ${result.value.body.message || result.value.status}`);
    try {
      render(result.value.body);
    } catch (err) {
      problems.push(`${name}: ${err}`);
    }
  };
  take("status", status, renderStatus);
  take("logs", log, renderLog);
  take("kv", kv, renderKv);
  // The region panels are shown once /v1/regions/status names this region; until then a failed
  // poll of it (no leader yet, say) is not a problem of the page.
  const regionsOk = regions.status === "fulfilled" && regions.value.ok;
  if (regionsOk || !$("regions-panel").hidden) take("regions", regions, renderRegions);
  if (!$("regions-panel").hidden) take("conflicts", conflicts, renderConflicts);
  if (problems.length === 0) {
    setConnection("ok", "live");
    $("updated").textContent = new Date().toLocaleTimeString();
  } else {
    setConnection("lost", problems.join("; "));
  }
}

async function pollForever() {
  for (;;) {
    const started = Date.now();
    try {
      await refresh();
    } catch (err) {
      setConnection("lost", `error: ${err}`);
    }
    await new Promise((r) => setTimeout(r, Math.max(50, POLL_MS - (Date.now() - started))));
  }
}

// Buttons kept across redraws by key: a redraw moves them into the new rows instead of
// replacing them, so a button never disappears under the pointer (or a WebDriver reference).
const keptButtons = new Map();

function keptButton(key, attrs, text) {
  let button = keptButtons.get(key);
  if (!button) {
    button = el("button", { type: "button" });
    keptButtons.set(key, button);
  }
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") button.className = value;
    else button.setAttribute(name, value);
  }
  if (button.textContent !== text) button.textContent = text;
  return button;
}

// Forgets the kept buttons a redraw did not use.
function pruneButtons(prefix, used) {
  for (const key of keptButtons.keys()) {
    if (key.startsWith(prefix) && !used.has(key)) keptButtons.delete(key);
  }
}

// The action waiting for its confirming click: its key and until when (ms since the epoch).
let armed = null;
// What the actions panel was last drawn from: it is redrawn only when that changes, so a
// button is never replaced under the pointer between two polls.
let actionsDrawn = "";

// The actions each node offers, from the page's view of the cluster.
function actionsOf(status, members) {
  const rows = [];
  for (const node of status.nodes) {
    const member = members.get(node.id) || {};
    const down = Boolean(node.error);
    const learner = member.suffrage === "learner";
    const acts = [];
    if (!down && !learner && node.role !== "LEADER") {
      acts.push({ kind: "transfer", label: "Make leader", confirm: `Confirm: make node ${node.id} the leader?` });
    }
    if (learner) acts.push({ kind: "promote", label: "Promote", confirm: `Confirm: make learner ${node.id} a voter?` });
    if (member.is_self && !down) acts.push({ kind: "snapshot", label: "Snapshot", confirm: `Confirm: node ${node.id} takes a snapshot now?` });
    acts.push({ kind: "remove", label: "Remove", confirm: `Confirm: remove node ${node.id} from the cluster?` });
    const what = down ? "down" : learner ? "learner" : (node.role || "").toLowerCase();
    rows.push({ id: node.id, what, acts });
  }
  return rows;
}

function renderActions(status, members) {
  const rows = actionsOf(status, members);
  const now = Date.now();
  const armedKey = armed && armed.until > now ? armed.key : null;
  const drawn = JSON.stringify([rows, armedKey]);
  if (drawn === actionsDrawn) return;
  actionsDrawn = drawn;
  const used = new Set();
  const lines = rows.map((row) => el("div", { class: "action-row", "data-node": row.id },
    el("span", { class: "action-node" }, `Node ${row.id} (${row.what})`),
    ...row.acts.map((a) => {
      const key = `${a.kind}:${row.id}`;
      used.add(`action:${key}`);
      return keptButton(`action:${key}`, {
        class: `action${key === armedKey ? " armed" : ""}`, "data-action": a.kind,
        "data-node": row.id, "data-armed": key === armedKey, "data-confirm": a.confirm,
      }, key === armedKey ? a.confirm : a.label);
    })));
  $("actions").replaceChildren(...lines);
  pruneButtons("action:", used);
}

// What an action does: one request to the node serving the page (a follower forwards
// membership changes and transfers to the leader).
function performAction(kind, id) {
  const post = (url, body) => getJson(url, {
    method: "POST", headers: { "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined,
  });
  switch (kind) {
    case "transfer": return post("/v1/cluster/transfer-leader", { to: id });
    case "promote": return post(`/v1/cluster/voters/${id}`);
    case "snapshot": return post("/v1/admin/snapshot");
    case "remove": return getJson(`/v1/cluster/members/${id}`, { method: "DELETE" });
    default: return Promise.resolve({ ok: false, status: 0, body: { error: "unknown", message: kind } });
  }
}

function describeAction(kind, id, result) {
  const b = result.body || {};
  if (!result.ok) return `${b.error || result.status}: ${b.message || ""}`;
  switch (kind) {
    case "transfer": return `node ${b.leader} leads in term ${b.term}`;
    case "snapshot": return `snapshot at index ${b.index} (${bytes(b.size)})`;
    case "add-learner":
    case "promote":
    case "remove": return `voters ${(b.voters || []).join(", ") || "none"}, learners ${(b.learners || []).join(", ") || "none"}`;
    default: return "done";
  }
}

// Runs a confirmed action and writes its outcome in the command history.
async function runAction(kind, id, label, request) {
  let result;
  try {
    result = await request();
  } catch (err) {
    result = { ok: false, status: 0, body: { error: "network", message: String(err) } };
  }
  const item = el("li", { class: result.ok ? "ok" : "error", "data-ok": result.ok, "data-action": kind },
    el("span", { class: "cmd" }, label), " → ", describeAction(kind, id, result));
  $("command-history").prepend(item);
  refresh().catch(() => {});
}

// The first click on an action arms it; a second one within 5 s carries it out.
function confirmed(key) {
  const now = Date.now();
  if (armed && armed.key === key && armed.until > now) {
    armed = null;
    return true;
  }
  armed = { key, until: now + 5000 };
  return false;
}

$("actions").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const kind = button.dataset.action;
  const id = Number(button.dataset.node);
  const key = `${kind}:${id}`;
  if (!confirmed(key)) {
    button.textContent = button.dataset.confirm;
    button.classList.add("armed");
    button.dataset.armed = "true";
    actionsDrawn = "";
    return;
  }
  actionsDrawn = "";
  runAction(kind, id, `${button.dataset.confirm.replace(/^Confirm: /, "").replace(/\?$/, "")}`, () => performAction(kind, id));
});

$("learner-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = Number($("learner-id").value);
  const addr = $("learner-addr").value.trim();
  const button = $("learner-submit");
  const key = `add-learner:${id}:${addr}`;
  if (!confirmed(key)) {
    button.textContent = `Confirm: add node ${id} at ${addr} as a learner?`;
    button.dataset.armed = "true";
    setTimeout(() => { button.textContent = "Add learner"; delete button.dataset.armed; }, 5000);
    return;
  }
  button.textContent = "Add learner";
  delete button.dataset.armed;
  runAction("add-learner", id, `add node ${id} at ${addr} as a learner`, () => getJson("/v1/cluster/learners", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id, peer_addr: addr }),
  }));
});

function addHistory(command, result) {
  const ok = result.ok;
  const b = result.body || {};
  let text;
  if (!ok) text = `${b.error || result.status}: ${b.message || ""}`;
  else if (b.op === "get") text = b.found ? `= ${JSON.stringify(b.value)}` : "(not found)";
  else if (b.op === "delete") text = `${b.deleted ? "deleted" : "was absent"} at index ${b.index}, term ${b.term}`;
  else text = `committed at index ${b.index}, term ${b.term}`;
  const item = el("li", { class: ok ? "ok" : "error", "data-ok": ok },
    el("span", { class: "cmd" }, command), " → ", text);
  $("command-history").prepend(item);
}

$("command-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("command-input");
  const command = input.value.trim();
  if (!command) return;
  const button = $("command-submit");
  button.disabled = true;
  try {
    const result = await getJson("/api/command", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ command }),
    });
    addHistory(command, result);
    if (result.ok) input.value = "";
  } catch (err) {
    addHistory(command, { ok: false, status: 0, body: { error: "network", message: String(err) } });
  } finally {
    button.disabled = false;
    refresh().catch(() => {});
  }
});

// The charts are SVG drawn by the node (GET /api/charts/{name}); redrawn every 2 s.
const CHART_MS = 2000;

async function refreshCharts() {
  const headers = {};
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  for (const box of document.querySelectorAll("#charts .chart")) {
    const resp = await fetch(`/api/charts/${box.dataset.chart}`, { cache: "no-store", headers }).catch(() => null);
    if (!resp || !resp.ok) continue;
    // The SVG comes from the node itself and holds only its own labels and numbers.
    box.innerHTML = await resp.text();
    box.dataset.updated = String(Date.now());
  }
}

async function chartsForever() {
  for (;;) {
    await refreshCharts().catch(() => {});
    await new Promise((r) => setTimeout(r, CHART_MS));
  }
}

setupTokenForm();
pollForever();
chartsForever();
