// Package dashboard is the web dashboard of `sharelock ui DIR`: one page
// that lists every lock under a shared folder with live status, a detail
// view per lock (holder, fencing token, history, statistics), and a
// "Release lock" button for authenticated administrators. Its assets are
// embedded (no CDN); the chart is inline SVG drawn by the page's own script.
//
// # How it reads the folder
//
// One Watcher serves every open page. It lists the folder (every lock
// directory NAME.lock up to three levels deep; it does not descend into lock
// directories or hidden folders) every 5 s, and inspects every lock every
// second with at most 8 inspections in flight. Pages get the result through
// server-sent events when something changes; no request reads the folder
// except a detail view's history (cached for a second). Every share access
// is bounded (5 s by default): when the share stalls, the snapshot says
// "unreachable since T" and keeps the last known states, and the next poll
// that gets answers clears it.
//
// A lock is shown stale when the dashboard has seen its owner file's bytes
// unchanged for the holder's whole lease on its own monotonic clock (the
// observer rule of docs/protocol.md), or its holder is proven dead on this
// machine.
//
// # JSON API
//
// All responses are JSON (UTF-8); times are RFC 3339.
//
//   - GET /api/locks: a Snapshot: {dir, version, server_time, listed,
//     unreachable_since?, unreachable_error?, locks: [Lock...]}. A Lock is
//     {name, state: free|held|stale|error, token, holder?: {user, host, pid,
//     app, since, lease_seconds}, last_seen?, stale_reason?, warnings?,
//     error?, checked}. name is the protected file's path relative to DIR
//     with forward slashes ("data/wems.db").
//   - GET /api/locks/{name}: a Detail: {lock, history: [Event...] (newest
//     first, at most 100), history_total, history_error?, stats (see
//     internal/stats.Summary), server_time}. Event is sharelock.Event.
//     404 if no such lock.
//   - GET /api/events: text/event-stream; an event "snapshot" whose data is
//     the JSON of /api/locks, at once and after every change.
//   - GET /api/session: {dir, read_only, admin?, csrf_token}.
//   - POST /api/login {name, password}; POST /api/logout;
//     POST /api/release {name, reason, force}: see below.
//
// Errors are {"error": "..."} with 400 (bad request), 403 (not an
// administrator, CSRF token missing or wrong, cross-origin request),
// 404 (no such lock), 409 (already free; or holder alive without force),
// 429 (too many failed logins), 502 (the share failed during a release).
//
// # Administrators
//
// Administrators are configured per dashboard with an admin file
// (`sharelock ui --admin-file FILE DIR`, or $SHARELOCK_ADMIN_FILE): one
// "NAME:BCRYPT-HASH" line each, as printed by `sharelock ui hash-password
// --name NAME` (or `htpasswd -nB NAME`). On Unix the file must not be
// writable by others. Without an admin file the dashboard is read-only: the
// page says so, there is no login and every POST is refused with 403; it
// then may only listen on a loopback address (the default is
// 127.0.0.1:8377).
//
// Login (POST /api/login) checks the password with bcrypt (an unknown name
// costs the same time as a wrong password) and allows 5 failures per client
// address per 15 minutes (then 429 with Retry-After). A session is a random
// 256-bit id in the cookie sharelock_session (HttpOnly, SameSite=Strict,
// Path=/, Secure when serving TLS), kept in memory for 8 hours.
//
// CSRF: every POST must carry the header X-CSRF-Token. Before login it is
// the token of GET /api/session, which also sets it as the cookie
// sharelock_csrf (double submit); after login it is the session's own token,
// compared in constant time. POSTs whose Origin (or Sec-Fetch-Site) shows
// another site are refused as well.
//
// POST /api/release {name, reason, force} calls sharelock.Break, the same
// path as `sharelock break`, with the reason "released by admin NAME via
// dashboard: REASON", which the break record and the lock's audit.log keep.
// Without force only a stale hold is released (Break first watches the
// holder for up to its lease); with force a live one too.
package dashboard
