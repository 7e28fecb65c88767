// sharelock dashboard: renders /api/locks (live through /api/events) and
// /api/locks/{name}. No framework, no CDN; every value from the server is
// put into the page as text, never as HTML.
"use strict";

const state = { snap: null, offset: 0, session: null, detail: null, detailName: null, filter: "" };

function h(tag, attrs, ...kids) {
  const ns = attrs && attrs._svg ? "http://www.w3.org/2000/svg" : null;
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "_svg" || v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.setAttribute("class", v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}
const $ = (id) => document.getElementById(id);

// ---- time helpers ----
function serverNow() { return Date.now() - state.offset; }
function age(ms) {
  if (ms < 0) ms = 0;
  const s = Math.floor(ms / 1000);
  if (s < 2) return "just now";
  if (s < 120) return s + " s ago";
  const m = Math.floor(s / 60);
  if (m < 120) return m + " min ago";
  const hr = Math.floor(m / 60);
  if (hr < 48) return hr + " h ago";
  return Math.floor(hr / 24) + " days ago";
}
function dur(sec) {
  if (!sec && sec !== 0) return "—";
  if (sec < 1) return (sec * 1000).toFixed(0) + " ms";
  if (sec < 120) return sec.toFixed(sec < 10 ? 1 : 0) + " s";
  const m = sec / 60;
  if (m < 120) return m.toFixed(0) + " min";
  const hr = m / 60;
  if (hr < 48) return hr.toFixed(1) + " h";
  return (hr / 24).toFixed(1) + " days";
}
function when(t) {
  if (!t || t.startsWith("0001-")) return "—";
  const d = new Date(t), now = new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (d.toDateString() === now.toDateString()) return time;
  return d.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" }) + " " + time;
}
function splitName(name) {
  const i = name.lastIndexOf("/");
  return i < 0 ? ["", name] : [name.slice(0, i + 1), name.slice(i + 1)];
}

// ---- API ----
async function api(path, opts) {
  const res = await fetch(path, Object.assign({ credentials: "same-origin" }, opts));
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new Error((body && body.error) || res.status + " " + res.statusText);
  return body;
}
async function post(path, data) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": (state.session && state.session.csrf_token) || "" },
    body: JSON.stringify(data),
  });
}
async function loadSession() {
  state.session = await api("/api/session");
  renderAccount();
}

// ---- live updates ----
function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("snapshot", (ev) => {
    const snap = JSON.parse(ev.data);
    state.offset = Date.now() - new Date(snap.server_time).getTime();
    state.snap = snap;
    setConn(true);
    render();
    if (state.detailName) refreshDetail();
  });
  es.onerror = () => setConn(false);
}
function setConn(ok) {
  const c = $("conn");
  c.className = "conn " + (ok ? "live" : "down");
  $("conn-text").textContent = ok ? "live" : "dashboard server not answering — retrying";
}

// ---- rendering ----
function render() {
  const snap = state.snap;
  if (!snap) return;
  $("folder").textContent = snap.dir;
  const ub = $("unreachable-banner");
  if (snap.unreachable_since) {
    ub.hidden = false;
    ub.textContent = "Share unreachable since " + when(snap.unreachable_since) +
      " — showing the last known state. " + (snap.unreachable_error || "");
  } else {
    ub.hidden = true;
  }
  const name = routeName();
  if (name !== null) renderDetail(name); else renderList();
}

function routeName() {
  const m = location.hash.match(/^#\/lock\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}

function badge(st, big) {
  return h("span", { class: "badge " + st + (big ? " big" : ""), "data-state": st }, st === "error" ? "unknown" : st);
}

function heartbeatText(l) {
  if (!l.last_seen) return "—";
  return age(serverNow() - new Date(l.last_seen).getTime());
}

function renderList() {
  const snap = state.snap;
  const counts = { free: 0, held: 0, stale: 0, error: 0 };
  for (const l of snap.locks) counts[l.state] = (counts[l.state] || 0) + 1;
  const q = state.filter.toLowerCase();
  const rows = snap.locks.filter((l) => !q || l.name.toLowerCase().includes(q) ||
    (l.holder && (l.holder.user + " " + l.holder.host + " " + l.holder.app).toLowerCase().includes(q)));
  const admin = state.session && state.session.admin;
  const main = $("main");
  const prevFocus = document.activeElement && document.activeElement.id === "filter";
  main.replaceChildren(
    h("div", { class: "cards" },
      card("Databases", snap.locks.length, ""),
      card("Held", counts.held, "held"),
      card("Stale", counts.stale, "stale"),
      card("Free", counts.free, "free")),
    h("div", { class: "panel" },
      h("div", { class: "toolbar" },
        h("input", { type: "search", id: "filter", placeholder: "Filter by database, user, machine or app", value: state.filter,
          oninput: (e) => { state.filter = e.target.value; renderList(); } }),
        h("span", { class: "count" }, rows.length + " of " + snap.locks.length + " shown")),
      snap.locks.length === 0
        ? h("div", { class: "empty" }, "No lock directories (*.lock) under this folder yet. They appear here as soon as a program takes a lock.")
        : h("table", { id: "locks" },
          h("thead", {}, h("tr", {},
            ["Status", "Database", "Held by", "Machine", "App", "Since", "Last heartbeat", "Token", ""].map((t) => h("th", {}, t)))),
          h("tbody", {}, rows.map((l) => lockRow(l, admin))))));
  if (prevFocus) { const f = $("filter"); f.focus(); f.setSelectionRange(f.value.length, f.value.length); }
}

function card(k, v, cls) {
  return h("div", { class: "card" }, h("div", { class: "k" }, k), h("div", { class: "v " + cls }, v));
}

function lockRow(l, admin) {
  const [dir, base] = splitName(l.name);
  const ho = l.state !== "free" ? l.holder : null;
  const open = () => { location.hash = "#/lock/" + encodeURIComponent(l.name); };
  return h("tr", { class: "lock-row", "data-name": l.name, "data-state": l.state, onclick: open },
    h("td", {}, badge(l.state),
      l.state === "stale" ? h("div", { class: "stale-note" }, "holder not seen for " + age(serverNow() - new Date(l.last_seen).getTime()).replace(" ago", "")) : null,
      l.error ? h("div", { class: "err-note", title: l.error }, state.snap.unreachable_since ? "last known state" : l.error) : null),
    h("td", { class: "name" }, h("span", { class: "dir" }, dir), base),
    h("td", {}, ho ? ho.user : h("span", { class: "muted" }, "—")),
    h("td", {}, ho ? ho.host : ""),
    h("td", {}, ho ? ho.app : ""),
    h("td", { class: "muted nowrap" }, ho ? when(ho.since) : ""),
    h("td", { class: "muted nowrap", "data-age": l.last_seen || "" }, ho ? heartbeatText(l) : ""),
    h("td", { class: "mono" }, l.token || "—",
      l.waiting && l.waiting.length ? h("div", { class: "muted waiting-count" }, l.waiting.length + " waiting") : null),
    h("td", {}, admin && ho ? h("button", { class: "btn small danger release-btn", "data-name": l.name,
      onclick: (e) => { e.stopPropagation(); releaseDialog(l); } }, "Release lock") : null));
}

// ---- detail view ----
async function refreshDetail() {
  const name = state.detailName;
  try {
    const d = await api("/api/locks/" + name.split("/").map(encodeURIComponent).join("/"));
    if (state.detailName !== name) return;
    state.detail = d;
    state.detailError = null;
  } catch (e) {
    state.detailError = e.message;
  }
  renderDetail(name);
}

function renderDetail(name) {
  if (state.detailName !== name) {
    state.detailName = name;
    state.detail = null;
    refreshDetail();
  }
  const main = $("main");
  const live = state.snap && state.snap.locks.find((l) => l.name === name);
  const d = state.detail;
  const l = live || (d && d.lock);
  const back = h("div", { class: "crumbs" }, h("a", { href: "#/" }, "← All databases"));
  if (!l) {
    main.replaceChildren(back, h("div", { class: "panel" }, h("div", { class: "empty" }, state.detailError || "Loading…")));
    return;
  }
  const admin = state.session && state.session.admin;
  const ho = l.state !== "free" ? l.holder : null;
  const holderPanel = h("div", { class: "panel", id: "holder-panel" },
    h("h2", {}, "Current holder"),
    h("div", { class: "body" },
      ho ? h("dl", { class: "kv" },
        h("dt", {}, "User"), h("dd", { id: "holder-user" }, ho.user),
        h("dt", {}, "Machine"), h("dd", {}, ho.host),
        h("dt", {}, "Application"), h("dd", {}, ho.app + " (PID " + ho.pid + ")"),
        h("dt", {}, "Since"), h("dd", {}, when(ho.since)),
        h("dt", {}, "Last heartbeat"), h("dd", { "data-age": l.last_seen || "" }, heartbeatText(l)),
        h("dt", {}, "Lease"), h("dd", {}, dur(ho.lease_seconds)),
        l.stale_reason ? [h("dt", {}, "Stale because"), h("dd", { class: "stale-note" }, l.stale_reason)] : null)
        : h("p", { class: "muted" }, "Nobody holds this database right now."),
      (l.warnings || []).map((w) => h("p", { class: "err-note" }, "Warning: " + w)),
      admin && ho ? h("p", {}, h("button", { class: "btn danger", id: "release-btn", onclick: () => releaseDialog(l) }, "Release lock")) : null));
  const tokenPanel = h("div", { class: "panel" },
    h("h2", {}, "Fencing token"),
    h("div", { class: "body" },
      h("div", { class: "token", id: "token" }, l.token || "—"),
      h("p", { class: "muted" }, "Strictly increasing with every acquisition, takeover and release by an administrator."),
      h("h3", { style: undefined }, "Waiting in line"),
      l.waiting && l.waiting.length
        ? h("ol", { id: "waiting" }, l.waiting.map((w) =>
          h("li", {}, w.user + " on " + w.host, w.app ? h("span", { class: "muted" }, " (" + w.app + ")") : null,
            h("span", { class: "muted" }, " — waiting since " + when(w.since)))))
        : h("p", { class: "muted", id: "waiting" }, "Nobody is waiting.")));
  const kids = [back,
    h("div", { class: "title-row" }, h("h1", { id: "detail-name" }, l.name), badge(l.state, true),
      l.state === "stale" ? h("span", { class: "stale-note" }, "holder not seen for " + heartbeatText(l).replace(" ago", "")) : null),
    h("div", { class: "grid2" }, holderPanel, tokenPanel)];
  if (d) {
    kids.push(statsPanel(d), historyPanel(d));
  } else {
    kids.push(h("div", { class: "panel" }, h("div", { class: "empty" }, state.detailError || "Loading history…")));
  }
  main.replaceChildren(...kids);
}

function statsPanel(d) {
  const s = d.stats;
  return h("div", { class: "panel", id: "stats" },
    h("h2", {}, "Statistics", h("span", { class: "note" }, "from " + s.events + " recorded transitions")),
    h("div", { class: "body" },
      h("div", { class: "cards" },
        card("Acquisitions", s.acquisitions, ""),
        card("Median hold", s.known_holds ? dur(s.median_hold_seconds) : "—", ""),
        card("Longest hold", s.known_holds ? dur(s.longest_hold_seconds) : "—", ""),
        card("Crashes recovered", s.crashes_recovered, s.crashes_recovered ? "stale" : ""),
        card("Forced releases", s.forced_releases, s.forced_releases ? "held" : "")),
      h("div", { class: "grid2" },
        h("div", {}, h("div", { class: "k muted" }, "Acquisitions per day (last " + s.per_day.length + " days)"),
          h("div", { class: "chart-wrap" }, dayChart(s.per_day))),
        h("div", { class: "users" }, h("div", { class: "k muted" }, "Busiest users"),
          s.busiest_users && s.busiest_users.length ? userBars(s.busiest_users) : h("p", { class: "muted" }, "No acquisitions yet.")))));
}

function dayChart(days) {
  const W = 560, H = 190, L = 28, B = 26, T = 14;
  const top = Math.max(1, ...days.map((d) => d.acquisitions));
  const unit = Math.max(1, Math.ceil(top / 4)), max = unit * 4;
  const step = (W - L) / days.length, bw = Math.max(6, step * 0.62);
  const s = (tag, a, ...k) => h(tag, Object.assign({ _svg: true }, a), ...k);
  const kids = [];
  for (let i = 0; i <= 4; i++) {
    const v = unit * i, y = H - B - ((H - B - T) * v) / max;
    kids.push(s("line", { class: "grid", x1: L, x2: W, y1: y, y2: y }), s("text", { x: L - 6, y: y + 3, "text-anchor": "end" }, v));
  }
  days.forEach((d, i) => {
    const bh = ((H - B - T) * d.acquisitions) / max, x = L + i * step + (step - bw) / 2, y = H - B - bh;
    const last = i === days.length - 1;
    kids.push(s("rect", { class: "bar" + (last ? " today" : ""), x: x, y: y, width: bw, height: Math.max(bh, d.acquisitions ? 1 : 0), rx: 2 },
      s("title", {}, d.date + ": " + d.acquisitions + " acquisitions")));
    if (d.acquisitions) kids.push(s("text", { class: "val", x: x + bw / 2, y: y - 3, "text-anchor": "middle" }, d.acquisitions));
    if (i % 2 === days.length % 2 || last) {
      kids.push(s("text", { x: x + bw / 2, y: H - 8, "text-anchor": "middle" }, last ? "today" : d.date.slice(5)));
    }
  });
  return s("svg", { class: "chart", id: "day-chart", viewBox: "0 0 " + W + " " + H, width: "100%", role: "img",
    "aria-label": "acquisitions per day" }, ...kids);
}

function userBars(users) {
  const max = Math.max(...users.map((u) => u.acquisitions));
  return users.map((u) => h("div", { class: "u" },
    h("span", { class: "mono" }, u.user),
    h("div", { class: "track" }, h("div", { class: "fill", style: undefined, "data-w": u.acquisitions / max })),
    h("span", { class: "muted" }, u.acquisitions + "×")));
}

// outcome tells how the claim of history[i] (newest first) ended: a claim
// still marked held whose generation is not the newest was ended by the
// next transition (a takeover or a break) or crashed.
function outcome(d, i) {
  const e = d.history[i];
  if (e.kind === "break") return ["released (admin)", ""];
  if (e.kind === "void") return ["abandoned", ""];
  // A takeover or break claims the generation after the one it ends.
  const next = i > 0 && d.history[i - 1].token === e.token + 1 ? d.history[i - 1] : null;
  if (next && next.kind === "takeover") return ["taken over", "taken"];
  if (next && next.kind === "break") return ["broken by admin", "lost"];
  if (e.state === "released") return ["released", ""];
  if (e.state === "lost") return ["lost", "lost"];
  if (i === 0 && d.lock.state !== "free" && d.lock.token === e.token) return ["holding", ""];
  return ["ended without release", "lost"];
}

function historyPanel(d) {
  const rows = d.history.map((e, i) => {
    const ho = e.holder || {};
    const [out, cls] = outcome(d, i);
    const held = e.kind !== "break" && e.kind !== "void" && e.state === "released" && ho.since
      ? dur((new Date(e.at) - new Date(ho.since)) / 1000) : (out === "holding" && ho.since ? dur((serverNow() - new Date(ho.since)) / 1000) + " so far" : "—");
    let note = e.reason || "";
    if (e.broke) note = (note ? note + " — " : "") + "ended " + e.broke.user + " on " + e.broke.host;
    return h("tr", {},
      h("td", { class: "mono" }, e.token),
      h("td", {}, h("span", { class: "kind " + e.kind }, e.kind)),
      h("td", {}, ho.user ? ho.user + " on " + ho.host : "—", ho.app ? h("span", { class: "muted" }, " (" + ho.app + ")") : null),
      h("td", { class: "muted nowrap" }, when(ho.since)),
      h("td", { class: "nowrap" }, h("span", { class: "outcome " + cls }, out)),
      h("td", { class: "nowrap" }, held),
      h("td", { class: "muted" }, note));
  });
  return h("div", { class: "panel", id: "history" },
    h("h2", {}, "History", h("span", { class: "note" }, "newest first; " + d.history.length + " of " + d.history_total + " transitions")),
    d.history_error ? h("div", { class: "body err-note" }, d.history_error) : null,
    rows.length ? h("table", {}, h("thead", {}, h("tr", {}, ["Token", "Kind", "Holder", "Since", "Outcome", "Held for", "Reason"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows)) : h("div", { class: "empty" }, "No transitions recorded."));
}

// ---- account and dialogs ----
function renderAccount() {
  const s = state.session, acc = $("account");
  $("readonly-banner").hidden = !s.read_only;
  if (s.read_only) {
    acc.replaceChildren(h("span", { class: "who", id: "readonly-tag" }, "read-only"));
  } else if (s.admin) {
    acc.replaceChildren(h("span", { class: "who", id: "admin-name" }, "admin: " + s.admin),
      h("button", { class: "btn small ghost", id: "logout-btn", onclick: logout }, "Log out"));
  } else {
    acc.replaceChildren(h("button", { class: "btn small ghost", id: "login-btn", onclick: loginDialog }, "Administrator login"));
  }
  render();
}

function modal(title, body, actions) {
  const close = () => $("modal-root").replaceChildren();
  const bg = h("div", { class: "modal-bg", onclick: (e) => { if (e.target === bg) close(); } },
    h("div", { class: "modal", role: "dialog", "aria-modal": "true" },
      h("h3", {}, title), h("div", { class: "mb" }, body), h("div", { class: "mf" }, actions(close))));
  $("modal-root").replaceChildren(bg);
  const first = bg.querySelector("input, textarea");
  if (first) first.focus();
  return close;
}

function loginDialog() {
  const msg = h("div", { class: "msg", id: "login-msg" });
  const name = h("input", { type: "text", id: "login-name", autocomplete: "username" });
  const pw = h("input", { type: "password", id: "login-password", autocomplete: "current-password" });
  modal("Administrator login", [h("label", {}, "Name", name), h("label", {}, "Password", pw), msg], (close) => [
    h("button", { class: "btn", onclick: close }, "Cancel"),
    h("button", { class: "btn primary", id: "login-submit", onclick: async () => {
      try {
        state.session = await post("/api/login", { name: name.value, password: pw.value });
        close();
        await loadSession();
      } catch (e) { msg.textContent = e.message; }
    } }, "Log in")]);
}

async function logout() {
  try { await post("/api/logout", {}); } catch (e) { /* the session may be gone already */ }
  await loadSession();
}

function releaseDialog(l) {
  const ho = l.holder || {};
  const msg = h("div", { class: "msg", id: "release-msg" });
  const reason = h("textarea", { id: "release-reason", placeholder: "Why? (recorded with your name)" });
  const confirm = h("input", { type: "checkbox", id: "release-confirm" });
  const force = h("input", { type: "checkbox", id: "release-force" });
  const live = l.state === "held";
  modal("Release lock on " + l.name, [
    h("p", {}, "This ends the hold of ", h("b", {}, ho.user + " on " + ho.host), ho.app ? " (" + ho.app + ")" : "",
      ". Their program is told it lost the lock at its next heartbeat."),
    live ? h("div", { class: "warn" }, "The holder still looks alive. Releasing a live holder can corrupt the database if it keeps writing.") : null,
    h("label", {}, "Reason", reason),
    live ? h("label", { class: "check" }, force, "Release even though the holder looks alive (force)") : null,
    h("label", { class: "check" }, confirm, "I have checked that nobody is using " + l.name + "."),
    msg], (close) => [
    h("button", { class: "btn", onclick: close }, "Cancel"),
    h("button", { class: "btn danger", id: "release-submit", onclick: async (e) => {
      if (!reason.value.trim()) { msg.textContent = "Please give a reason."; return; }
      if (!confirm.checked) { msg.textContent = "Please confirm first."; return; }
      e.target.disabled = true;
      msg.textContent = live && !force.checked ? "" : "Checking that the holder is gone (up to one lease)…";
      try {
        await post("/api/release", { name: l.name, reason: reason.value, force: force.checked });
        close();
        if (state.detailName) refreshDetail();
      } catch (err) { msg.textContent = err.message; e.target.disabled = false; }
    } }, "Release lock")]);
}

// ---- boot ----
function tick() {
  for (const el of document.querySelectorAll("[data-age]")) {
    const t = el.getAttribute("data-age");
    if (t) el.textContent = age(serverNow() - new Date(t).getTime());
  }
  for (const el of document.querySelectorAll(".fill[data-w]")) el.style.width = (parseFloat(el.getAttribute("data-w")) * 100).toFixed(1) + "%";
}
window.addEventListener("hashchange", () => {
  if (routeName() === null) { state.detailName = null; state.detail = null; }
  render();
});
setInterval(tick, 1000);
new MutationObserver(() => {
  for (const el of document.querySelectorAll(".fill[data-w]")) el.style.width = (parseFloat(el.getAttribute("data-w")) * 100).toFixed(1) + "%";
}).observe(document.body, { childList: true, subtree: true });
loadSession().catch((e) => setConn(false));
connect();
