// gochat's web page: the HTTP API and WebSocket of CONTRACT.md, nothing else. Plain JS.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  access: sessionStorage.getItem("access"),
  refresh: sessionStorage.getItem("refresh"),
  me: JSON.parse(sessionStorage.getItem("me") || "null"),
  conversations: new Map(), // id -> {id, type, name, group_id, unread, last_seq}
  current: null,            // the open conversation's id
  lastSeq: 0,               // the highest seq shown in the open conversation
  firstSeq: 0,              // the lowest
  pending: new Map(),       // client_msg_id -> <li>
  ws: null,
  backoff: 1000,
  names: new Map(),         // user id -> username
};

async function api(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (state.access) headers.authorization = `Bearer ${state.access}`;
  let response = await fetch(`/api/v1${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && state.refresh && path !== "/auth/refresh") {
    if (await refresh()) return api(method, path, body);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error(data ? `${data.message} (${data.code})` : response.statusText);
  return data;
}

function remember(pair) {
  state.access = pair.access_token;
  state.refresh = pair.refresh_token;
  state.me = pair.user || state.me;
  sessionStorage.setItem("access", state.access);
  sessionStorage.setItem("refresh", state.refresh);
  sessionStorage.setItem("me", JSON.stringify(state.me));
}

async function refresh() {
  try {
    remember(await api("POST", "/auth/refresh", { refresh_token: state.refresh }));
    return true;
  } catch {
    signOut();
    return false;
  }
}

function signOut() {
  sessionStorage.clear();
  Object.assign(state, { access: null, refresh: null, me: null, current: null });
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  $("app").hidden = true;
  $("auth").hidden = false;
}

// --- accounts -------------------------------------------------------------------------------
$("auth-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await enter(false);
});
$("register").addEventListener("click", () => enter(true));

async function enter(register) {
  const credentials = { username: $("username").value.trim(), password: $("password").value };
  $("auth-error").textContent = "";
  try {
    if (register) await api("POST", "/users/register", credentials);
    remember(await api("POST", "/auth/login", credentials));
    await start();
  } catch (e) {
    $("auth-error").textContent = e.message;
  }
}

$("logout").addEventListener("click", async () => {
  try { await api("POST", "/auth/logout"); } catch { /* signed out either way */ }
  signOut();
});

// --- conversations --------------------------------------------------------------------------
async function loadConversations() {
  // The list comes a page at a time: follow next_cursor to the last page.
  const conversations = [];
  let cursor = "";
  do {
    const page = await api("GET", `/conversations?limit=200&cursor=${encodeURIComponent(cursor)}`);
    conversations.push(...page.conversations);
    cursor = page.next_cursor || "";
  } while (cursor);
  state.conversations.clear();
  state.conversations.set("world", { id: "world", type: "world", name: "World", unread: 0 });
  for (const c of conversations) state.conversations.set(c.id, c);
  renderConversations();
  await Promise.all(conversations.filter((c) => c.type === "single" && !c.name).map(namePeer));
  renderConversations();
}

// A single chat has no name of its own: it is shown under the peer's username, found from
// the latest message the peer wrote in it.
async function namePeer(c) {
  try {
    let from = c.last_message && c.last_message.from_user_id;
    if (!from || from === state.me.id) {
      const page = await api("GET", `/messages/history?conversation_id=${c.id}&limit=100`);
      const theirs = page.messages.find((m) => m.from_user_id !== state.me.id);
      from = theirs && theirs.from_user_id;
    }
    if (!from) return;
    if (!state.names.has(from)) state.names.set(from, (await api("GET", `/users/${from}`)).username);
    c.peer = state.names.get(from);
  } catch { /* shown as "chat" */ }
}

function label(c) {
  return c.name || c.peer || (c.type === "single" ? "chat" : c.id);
}

function renderConversations() {
  const list = $("conversations");
  list.replaceChildren();
  for (const c of state.conversations.values()) {
    const item = document.createElement("li");
    item.dataset.id = c.id;
    item.className = c.id === state.current ? "active" : "";
    const name = document.createElement("span");
    name.textContent = label(c);
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = c.unread > 0 && c.id !== state.current ? String(c.unread) : "";
    item.append(name, badge);
    item.addEventListener("click", () => open(c.id));
    list.append(item);
  }
}

async function sideAction(action) {
  $("side-error").textContent = "";
  try { await action(); } catch (e) { $("side-error").textContent = e.message; }
}

async function userByName(username) {
  const user = await api("GET", `/users/search?username=${encodeURIComponent(username)}`);
  state.names.set(user.id, user.username);
  return user;
}

$("new-chat").addEventListener("submit", (event) => {
  event.preventDefault();
  sideAction(async () => {
    const peer = await userByName($("peer").value.trim());
    const { conversation } = await api("POST", "/conversations/create", { peer_user_id: peer.id });
    $("peer").value = "";
    state.conversations.set(conversation.id, { ...conversation, peer: peer.username });
    renderConversations();
    await open(conversation.id);
  });
});

$("new-group").addEventListener("submit", (event) => {
  event.preventDefault();
  sideAction(async () => {
    const names = $("group-members").value.split(",").map((n) => n.trim()).filter(Boolean);
    const members = await Promise.all(names.map(userByName));
    const created = await api("POST", "/groups/create", {
      name: $("group-name").value.trim(), member_ids: members.map((m) => m.id),
    });
    $("group-name").value = $("group-members").value = "";
    await loadConversations();
    await open(created.conversation_id);
  });
});

$("join-group").addEventListener("submit", (event) => {
  event.preventDefault();
  sideAction(async () => {
    await api("POST", `/groups/${encodeURIComponent($("group-id").value.trim())}/join`);
    $("group-id").value = "";
    await loadConversations();
  });
});

$("leave-group").addEventListener("click", () => sideAction(async () => {
  const c = state.conversations.get(state.current);
  await api("POST", `/groups/${c.group_id}/leave`);
  state.current = null;
  $("title").textContent = "Pick a conversation";
  $("group-panel").hidden = true;
  $("messages").replaceChildren();
  $("composer").hidden = true;
  await loadConversations();
}));

// --- messages -------------------------------------------------------------------------------
async function open(id) {
  state.current = id;
  state.lastSeq = 0;
  state.firstSeq = 0;
  const c = state.conversations.get(id);
  c.unread = 0;
  renderConversations();
  $("title").textContent = label(c);
  $("composer").hidden = false;
  $("messages").replaceChildren();
  $("group-panel").hidden = c.type !== "group";
  if (c.type === "group") {
    const info = await api("GET", `/groups/${c.group_id}`);
    const members = (info.members || []).length;
    $("group-info").textContent = `group ${c.group_id} · ${members} members`;
  }
  const page = await api("GET", `/messages/history?conversation_id=${id}&limit=30`);
  page.messages.forEach((m) => show(m, false));
  scrollDown();
  markRead();
}

function show(m, atTop) {
  if (document.querySelector(`#messages li[data-seq="${m.seq}"]`)) return; // a delivery again
  state.lastSeq = Math.max(state.lastSeq, m.seq);
  state.firstSeq = state.firstSeq ? Math.min(state.firstSeq, m.seq) : m.seq;
  // Our own message, sent from here and delivered back before its ack: it is stored now.
  const own = m.client_msg_id
    && document.querySelector(`#messages li[data-client="${CSS.escape(m.client_msg_id)}"]`);
  if (own) {
    own.dataset.seq = m.seq;
    own.classList.remove("pending");
    own.querySelector(".meta").textContent = "✓";
    state.pending.delete(m.client_msg_id);
    return;
  }
  const item = document.createElement("li");
  item.dataset.seq = m.seq;
  item.dataset.client = m.client_msg_id || "";
  item.className = m.from_user_id === state.me.id ? "mine" : "";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = m.content;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = item.className === "mine" ? "✓" : "";
  item.append(text, meta);
  const list = $("messages");
  if (atTop) list.prepend(item); else list.append(item);
}

function scrollDown() {
  $("messages").scrollTop = $("messages").scrollHeight;
}

// Older history when scrolled to the top.
$("messages").addEventListener("scroll", async () => {
  if ($("messages").scrollTop > 0 || !state.current || state.firstSeq <= 1) return;
  const before = state.firstSeq;
  const page = await api("GET", `/messages/history?conversation_id=${state.current}&before_seq=${before}&limit=30`);
  page.messages.slice().reverse().forEach((m) => show(m, true));
});

// Fills a gap (or what a reconnect missed) from history.
async function sync() {
  if (!state.current) return;
  const page = await api("GET", `/messages/history?conversation_id=${state.current}&after_seq=${state.lastSeq}&limit=100`);
  page.messages.forEach((m) => show(m, false));
  if (page.messages.length) { scrollDown(); markRead(); }
}

function markRead() {
  if (state.ws && state.ws.readyState === WebSocket.OPEN && state.current && state.lastSeq) {
    state.ws.send(JSON.stringify({ type: "read", data: { conversation_id: state.current, seq: state.lastSeq } }));
  }
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const content = $("text").value;
  if (!content || !state.current) return;
  const id = crypto.randomUUID();
  const item = document.createElement("li");
  item.className = "mine pending";
  item.dataset.client = id;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = content;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = "…";
  item.append(text, meta);
  $("messages").append(item);
  scrollDown();
  state.pending.set(id, { item, frame: { type: "message", data: {
    conversation_id: state.current, content, message_type: "text", client_msg_id: id,
  } } });
  $("text").value = "";
  sendPending(id);
});

function sendPending(id) {
  const pending = state.pending.get(id);
  if (pending && state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(pending.frame));
  }
}

// --- the socket -----------------------------------------------------------------------------
// The socket opens with a single-use ticket, so the access token never appears in a URL.
async function connect() {
  if (!state.access) return;
  let ticket;
  try {
    ({ ticket } = await api("POST", "/ws/ticket"));
  } catch {
    if (!state.access) return; // the refresh failed: signed out
    setTimeout(connect, state.backoff);
    state.backoff = Math.min(state.backoff * 2, 30000);
    return;
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
  state.ws = ws;
  ws.onopen = () => {
    state.backoff = 1000;
    $("status").textContent = "online";
    $("status").className = "status online";
    for (const id of state.pending.keys()) sendPending(id); // resends get the first ack
    sync();
  };
  ws.onmessage = (event) => receive(JSON.parse(event.data));
  ws.onclose = async () => {
    $("status").textContent = "offline";
    $("status").className = "status";
    if (!state.access) return;
    if (state.kicked === "token expired" && !(await refresh())) return;
    if (state.kicked === "logout") { signOut(); return; }
    state.kicked = null;
    setTimeout(connect, state.backoff);
    state.backoff = Math.min(state.backoff * 2, 30000);
  };
}

function receive(frame) {
  const data = frame.data || {};
  switch (frame.type) {
    case "ack": {
      const pending = state.pending.get(data.client_msg_id);
      state.pending.delete(data.client_msg_id);
      if (pending) {
        pending.item.classList.remove("pending");
        pending.item.dataset.seq = data.seq;
        pending.item.querySelector(".meta").textContent = "✓";
        state.lastSeq = Math.max(state.lastSeq, data.seq);
      }
      break;
    }
    case "message": {
      if (data.conversation_id === state.current) {
        if (data.seq > state.lastSeq + 1 && state.lastSeq) { sync(); break; } // a gap
        show(data, false);
        scrollDown();
        markRead();
      } else {
        const c = state.conversations.get(data.conversation_id);
        if (c) { c.unread = (c.unread || 0) + 1; renderConversations(); } else loadConversations();
      }
      break;
    }
    case "read":
      if (data.conversation_id === state.current && data.user_id !== state.me.id) {
        document.querySelectorAll("#messages li.mine").forEach((li) => {
          if (Number(li.dataset.seq) <= data.seq) li.querySelector(".meta").textContent = "✓✓";
        });
      }
      break;
    case "error": {
      const pending = state.pending.get(data.client_msg_id);
      if (pending) {
        state.pending.delete(data.client_msg_id);
        pending.item.querySelector(".meta").textContent = `failed: ${data.message}`;
      }
      break;
    }
    case "kick":
      state.kicked = data.reason;
      break;
    default:
      break;
  }
}

async function start() {
  $("auth").hidden = true;
  $("app").hidden = false;
  $("me").textContent = state.me ? state.me.username : "";
  await loadConversations();
  connect();
}

if (state.access) start().catch(signOut);
