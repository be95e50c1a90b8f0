"""The HTML report's stylesheet and script, inlined into every report.

Plain CSS and JavaScript, nothing fetched: the report works offline, as a downloaded file and
inside the MLflow UI's artifact viewer. That viewer shows HTML in a frame sandboxed with
``allow-scripts`` only: scripts run, but no link can leave the frame (no ``allow-popups``,
no ``allow-top-navigation``), and a link that navigates the frame itself loads the MLflow UI
where it cannot run, which blanks the viewer. So inside a frame a click on a run's link opens a
new tab where that is allowed, and otherwise shows the run's address to copy, with a note that
links work in the downloaded report.
"""

from __future__ import annotations

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 20px;
       color: #1f2328; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
a { color: #0969da; text-decoration: none; } a:hover { text-decoration: underline; }
.meta { color: #59636e; } .meta span { margin-right: 14px; }
.badge { display: inline-block; min-width: 64px; padding: 0 6px; border-radius: 10px;
         font-size: 12px; font-weight: 600; text-align: center; color: #fff; }
.badge.passed, .badge.FINISHED { background: #1a7f37; }
.badge.failed, .badge.error, .badge.killed, .badge.FAILED, .badge.KILLED { background: #cf222e; }
.badge.skipped { background: #8c959f; } .badge.xfailed { background: #bf8700; }
.badge.xpassed { background: #8250df; } .badge.unknown { background: #59636e; }
.controls { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center;
            margin: 0 0 8px; }
.controls label { white-space: nowrap; cursor: pointer; }
#search { font: inherit; padding: 2px 8px; width: 260px; border: 1px solid #d1d9e0;
          border-radius: 6px; }
select { font: inherit; }
#shown { color: #59636e; }
details.module { border: 1px solid #d1d9e0; border-radius: 6px; margin: 6px 0; }
details.module.bad { border-color: #cf222e; }
details.module > summary { cursor: pointer; padding: 6px 10px; background: #f6f8fa;
                           border-radius: 6px; list-style-position: inside; }
details.module.bad > summary { background: #ffebe9; }
summary .path { font-weight: 600; margin: 0 8px; } summary .info { color: #59636e; }
table { border-collapse: collapse; width: 100%; }
td { padding: 3px 10px; border-top: 1px solid #eef1f4; vertical-align: top; }
tbody + tbody td { border-top: 1px solid #eef1f4; }
td.outcome { width: 80px; }
td.duration { text-align: right; white-space: nowrap; width: 80px; color: #59636e; }
td.params { color: #59636e; font-size: 12px; }
td.metrics { font-size: 12px; }
.metric { display: inline-block; margin: 0 8px 0 0; white-space: nowrap; }
.metric b { font-weight: 600; font-variant-numeric: tabular-nums; }
.reason { color: #59636e; font-size: 12px; }
tbody.test.bad td.name a { color: #cf222e; font-weight: 600; }
pre.failure { margin: 2px 0 6px; padding: 6px 8px; background: #fff8f8; color: #82071e;
              white-space: pre-wrap; font-size: 12px; border-left: 3px solid #cf222e; }
.more { color: #59636e; padding: 4px 10px; }
button { font: inherit; margin-right: 6px; padding: 2px 10px; border: 1px solid #d1d9e0;
         border-radius: 6px; background: #f6f8fa; cursor: pointer; }
svg text { font: 12px system-ui, sans-serif; fill: #1f2328; }
#link-note { position: absolute; z-index: 10; max-width: 560px; padding: 10px 12px;
             background: #fff; border: 1px solid #d1d9e0; border-radius: 6px;
             box-shadow: 0 4px 16px rgba(31, 35, 40, 0.15); }
#link-note p { margin: 0 0 6px; }
#link-note input { font: 12px ui-monospace, monospace; width: 100%; box-sizing: border-box;
                   padding: 3px 6px; margin: 0 0 6px; }
#link-copied { color: #1a7f37; }
[hidden] { display: none !important; }
"""

# A run's link: inside a frame (the MLflow UI's viewer), a new tab or the address to copy.
_LINKS = """
function framed() {
  try { return window.self !== window.top; } catch (e) { return true; }
}
var note = document.getElementById("link-note");
var noteUrl = document.getElementById("link-url");
var copied = document.getElementById("link-copied");
function showNote(link, url) {
  noteUrl.value = url;
  copied.textContent = "";
  note.hidden = false;
  var box = link.getBoundingClientRect();
  var width = document.documentElement.clientWidth;
  var left = Math.max(8, Math.min(box.left, width - note.offsetWidth - 8));
  note.style.left = (left + window.scrollX) + "px";
  note.style.top = (box.bottom + window.scrollY + 4) + "px";
  noteUrl.focus();
  noteUrl.select();
}
document.addEventListener("click", function (event) {
  var link = event.target.closest ? event.target.closest("a[data-run-id]") : null;
  if (!link || !framed()) { return; }
  event.preventDefault();
  var url = link.getAttribute("href");
  var opened = null;
  try { opened = window.open(url, "_blank"); } catch (e) { opened = null; }
  if (opened) {
    try { opened.opener = null; } catch (e) { /* another origin's window */ }
    return;
  }
  showNote(link, url);
});
document.getElementById("link-copy").addEventListener("click", function () {
  noteUrl.focus();
  noteUrl.select();
  var done = function () { copied.textContent = "Copied."; };
  var byHand = function () {
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    copied.textContent = ok ? "Copied." : "Press Ctrl+C (\\u2318C) to copy.";
  };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(noteUrl.value).then(done, byHand);
  } else {
    byHand();
  }
});
document.getElementById("link-close").addEventListener("click", function () {
  note.hidden = true;
});
"""

# Filters by outcome, the search box and sorting, over the tests of every module.
_TESTS = """
var tree = document.getElementById("tree");
var modules = Array.prototype.slice.call(tree.querySelectorAll("details.module"));
var initiallyOpen = modules.map(function (m) { return m.open; });
var boxes = Array.prototype.slice.call(document.querySelectorAll("input.outcome"));
var search = document.getElementById("search");
var sort = document.getElementById("sort");
var wasFiltering = false;
function rows(module) {
  return Array.prototype.slice.call(module.querySelectorAll("tbody[data-outcome]"));
}
function matches(row, wanted, query) {
  if (!wanted[row.dataset.outcome]) { return false; }
  if (!query) { return true; }
  return row.dataset.name.toLowerCase().indexOf(query) >= 0 ||
    row.dataset.nodeid.toLowerCase().indexOf(query) >= 0;
}
function filter() {
  var wanted = {};
  boxes.forEach(function (box) { wanted[box.value] = box.checked; });
  var query = search.value.trim().toLowerCase();
  var filtering = query !== "" || boxes.some(function (box) { return !box.checked; });
  var shown = 0;
  modules.forEach(function (module, i) {
    var visible = 0;
    rows(module).forEach(function (row) {
      row.hidden = !matches(row, wanted, query);
      if (!row.hidden) { visible += 1; }
    });
    shown += visible;
    module.hidden = filtering && visible === 0;
    if (filtering) {
      module.open = visible > 0;
    } else if (wasFiltering) {
      module.open = initiallyOpen[i];
    }
  });
  wasFiltering = filtering;
  document.getElementById("shown").textContent = filtering ? shown + " shown" : "";
}
var names = new Intl.Collator(undefined, { numeric: true });
function number(element, key) { return Number(element.dataset[key]); }
var orders = {
  order: function (a, b) { return number(a, "index") - number(b, "index"); },
  name: function (a, b) { return names.compare(a.dataset.name, b.dataset.name); },
  outcome: function (a, b) { return number(a, "rank") - number(b, "rank"); },
  duration: function (a, b) { return number(b, "duration") - number(a, "duration"); }
};
function ordered(elements, key) {
  return elements.slice().sort(function (a, b) {
    return orders[key](a, b) || orders.order(a, b);
  });
}
function sortBy(key) {
  ordered(modules, key).forEach(function (module) { tree.appendChild(module); });
  modules.forEach(function (module) {
    var table = module.querySelector("table");
    ordered(rows(module), key).forEach(function (row) { table.appendChild(row); });
  });
}
boxes.forEach(function (box) { box.addEventListener("change", filter); });
search.addEventListener("input", filter);
sort.addEventListener("change", function () { sortBy(sort.value); });
document.getElementById("expand-all").addEventListener("click", function () {
  modules.forEach(function (d) { d.open = true; });
});
document.getElementById("collapse-all").addEventListener("click", function () {
  modules.forEach(function (d) { d.open = false; });
});
"""

SCRIPT = "(function () {\n" + _LINKS + _TESTS + "})();\n"

LINK_NOTE = (
    '<div id="link-note" role="dialog" aria-label="address of the run" hidden>'
    "<p>The MLflow UI shows this report in a frame that lets no link open. Copy the run's "
    "address into a new tab, or download the report (the download button above it) and open "
    "the file in a browser: there its links open the runs.</p>"
    '<input id="link-url" readonly aria-label="the run\'s address">'
    '<button id="link-copy" type="button">Copy</button>'
    '<button id="link-close" type="button">Close</button> <span id="link-copied"></span></div>'
)
