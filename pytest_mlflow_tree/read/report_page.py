"""The HTML report's stylesheet and script, inlined into every report.

Plain CSS and JavaScript, nothing fetched: the report works offline, as a downloaded file and
inside the MLflow UI's artifact viewer.
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
[hidden] { display: none !important; }
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

SCRIPT = "(function () {\n" + _TESTS + "})();\n"
