/* Review charts: draws every `[data-figure]` element with Plotly from the JSON script whose id it
 * names (the figure is built on the server, see aggregation/review_data.py). Runs on load and
 * after htmx swaps in a new review body (the pool and rule switchers). plotly.js is a static file served
 * from the plotly wheel; nothing comes from a CDN. */
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"] };

  function drawOne(node) {
    var source = document.getElementById(node.getAttribute("data-figure"));
    if (!source) return Promise.resolve();
    var figure = JSON.parse(source.textContent);
    var layout = Object.assign({ autosize: true, legend: { orientation: "h", y: -0.3 } }, figure.layout || {});
    layout.margin = Object.assign({ t: 50, r: 10 }, layout.margin || {});
    layout.xaxis = Object.assign({ automargin: true }, layout.xaxis || {});
    layout.yaxis = Object.assign({ automargin: true }, layout.yaxis || {});
    if (node.clientWidth < 600) {
      // Phone: the caption under the chart names it; the title and wide margins would crowd the plot.
      delete layout.title;
      layout.margin = { t: 10, r: 5, l: 10, b: 10 };
    }
    return window.Plotly.react(node, figure.data || [], layout, CONFIG).then(function () {
      node.setAttribute("data-drawn", "true");
    });
  }

  // One chart per task: drawing all of them at once blocks the page for about a second on a
  // slow machine; between two charts the browser paints and answers the reader.
  var queue = [];
  var running = false;

  function pump() {
    var node = queue.shift();
    while (node && (!node.isConnected || node.getAttribute("data-drawn"))) node = queue.shift();
    if (!node) {
      running = false;
      return;
    }
    running = true;
    Promise.resolve(node).then(drawOne).then(null, function (error) { console.error("review chart", error); }).then(function () {
      window.setTimeout(pump, 0);
    });
  }

  function draw(root) {
    if (!window.Plotly) return;
    var nodes = (root || document).querySelectorAll("[data-figure]");
    Array.prototype.forEach.call(nodes, function (node) {
      if (!node.getAttribute("data-drawn") && queue.indexOf(node) < 0) queue.push(node);
    });
    if (!running) pump();
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
})();
