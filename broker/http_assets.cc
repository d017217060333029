// The console's stylesheet and script, compiled into the binary: the console
// loads nothing from anywhere else (and its Content-Security-Policy says so).
#include "broker/http_pages.h"

namespace tq {

const char kConsoleCss[] = R"css(
:root { --fg:#1d2330; --dim:#6b7385; --line:#dde1e8; --bg:#f6f7f9;
  --accent:#2b5fd9; --done:#2e9e5b; --failed:#d64545; --warn:#c98a12; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, sans-serif; color:var(--fg);
  background:var(--bg); }
header { display:flex; gap:4px; align-items:center; padding:0 20px;
  background:#1d2330; height:46px; }
header a { color:#c9d1e3; text-decoration:none; padding:13px 12px; }
header a.active, header a:hover { color:#fff; background:#2c3446; }
.brand { color:#fff; font-weight:700; font-size:18px; margin-right:14px; }
.live-dot { margin-left:auto; width:9px; height:9px; border-radius:50%;
  background:#777; }
.live-dot.on { background:#3ad07a; } .live-dot.off { background:var(--failed); }
main { max-width:1200px; margin:0 auto; padding:10px 24px 40px; }
h1 { font-size:22px; margin:14px 0; word-break:break-all; }
h2 { font-size:16px; margin:22px 0 8px; }
table { border-collapse:collapse; width:100%; background:#fff;
  border:1px solid var(--line); }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line);
  vertical-align:top; }
thead th { background:#eef0f4; font-weight:600; font-size:13px; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
table.numeric thead th:not(:first-child), table.workers thead th:nth-child(n+6):nth-child(-n+10),
table.batches thead th:nth-child(n+4), table.tasks thead th:nth-child(1),
table.tasks thead th:nth-child(5), table.tasks thead th:nth-child(7) {
  text-align:right; }
td.url { max-width:420px; word-break:break-all; }
td.err, .err { color:var(--failed); word-break:break-word; }
table.kv { width:auto; min-width:50%; } table.kv th { width:140px; }
.dim { color:var(--dim); font-size:12px; }
.cards { display:flex; flex-wrap:wrap; gap:10px; }
.card { background:#fff; border:1px solid var(--line); border-radius:6px;
  padding:10px 14px; min-width:130px; }
.card .label { color:var(--dim); font-size:12px; }
.card .value { font-size:20px; font-weight:600; }
.card.bad { border-color:var(--failed); } .card.bad .value { color:var(--failed); }
svg.chart { width:100%; max-width:900px; height:auto; background:#fff;
  border:1px solid var(--line); }
svg.chart rect.done, .key.done { fill:var(--done); background:var(--done); }
svg.chart rect.failed, .key.failed { fill:var(--failed); background:var(--failed); }
svg.chart text { font-size:10px; fill:var(--dim); }
svg.chart .axis { stroke:var(--line); }
.key { display:inline-block; width:10px; height:10px; }
.legend { color:var(--dim); font-size:12px; margin:4px 0; }
progress { width:160px; height:12px; vertical-align:middle; accent-color:var(--done); }
.batch-progress progress { width:420px; height:18px; }
.pct { font-weight:600; }
.state { display:inline-block; padding:0 6px; border-radius:8px; font-size:12px;
  background:#e7eaf0; }
.state.done { background:#dbf2e4; color:#1d6b3d; }
.state.dead { background:#fbe1e1; color:#9b2222; }
.state.leased { background:#dfe8fb; color:#1f4aa8; }
.state.retry_wait { background:#fbefd6; color:#8a5d00; }
.state.cancelled { background:#ececec; color:#555; }
.actions, .filters { margin:10px 0; display:flex; gap:8px; flex-wrap:wrap;
  align-items:center; }
.actions form, .row-actions form { display:inline; margin:0; }
td.row-actions { white-space:nowrap; }
.button, button { display:inline-block; padding:5px 12px; border:1px solid #b8c0d0;
  border-radius:4px; background:#fff; color:var(--fg); text-decoration:none;
  font:inherit; cursor:pointer; }
button:hover, .button:hover { border-color:var(--accent); color:var(--accent); }
input, select, textarea { font:inherit; padding:4px 6px; border:1px solid #b8c0d0;
  border-radius:4px; }
form.upload fieldset { border:1px solid var(--line); background:#fff;
  margin:0 0 12px; padding:10px 14px; display:flex; flex-wrap:wrap; gap:12px; }
form.upload label { display:flex; flex-direction:column; gap:3px; }
form.upload textarea { width:720px; max-width:100%; font-family:monospace; }
pre { background:#fff; border:1px solid var(--line); padding:10px; overflow:auto;
  max-height:480px; white-space:pre-wrap; word-break:break-all; }
.report { border-left:4px solid var(--warn); background:#fff8e8; padding:4px 12px;
  margin:10px 0; }
.report.error { border-left-color:var(--failed); background:#fdeeee; }
.notice { background:#e9f1ff; border-left:4px solid var(--accent); padding:6px 12px; }
.error { color:var(--failed); }
.pager a { margin-right:14px; }
)css";

const char kConsoleJs[] = R"js(
// The live part of each page is fetched again every second (X-Live: 1
// returns only that part, rendered and escaped by the server); a page that
// takes long to make is asked for less often (4x its time), so viewers of a
// slow page cannot keep the server busy.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var dot = document.getElementById("live-dot");
  var last = null;
  function mark(ok) { if (dot) dot.className = "live-dot " + (ok ? "on" : "off"); }
  function schedule(ms) { setTimeout(refresh, Math.max(1000, ms)); }
  function refresh() {
    if (document.hidden) return schedule(1000);
    var started = Date.now();
    fetch(location.href, { headers: { "X-Live": "1" }, cache: "no-store",
                           credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.text();
      })
      .then(function (html) {
        // Not under the pointer's button: a click must not lose its form.
        var held = live.querySelector("button:hover, button:focus, input:focus");
        if (html !== last && !held) { live.innerHTML = html; last = html; }
        mark(true);
      })
      .catch(function () { mark(false); })
      .then(function () { schedule(4 * (Date.now() - started)); });
  }
  if (live) { mark(true); schedule(1000); }
  document.addEventListener("submit", function (e) {
    var message = e.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) e.preventDefault();
  });
})();
)js";

}  // namespace tq
