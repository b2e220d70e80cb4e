/* Review charts: draws every `[data-figure]` element with Plotly from the JSON script whose id it
 * names (the figure is built on the server, see aggregation/review_data.py). Runs on load and
 * after htmx swaps in a new review body (the rule switcher). plotly.js is a static file served
 * from the plotly wheel; nothing comes from a CDN. */
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"] };

  function draw(root) {
    if (!window.Plotly) return;
    var nodes = (root || document).querySelectorAll("[data-figure]");
    Array.prototype.forEach.call(nodes, function (node) {
      var source = document.getElementById(node.getAttribute("data-figure"));
      if (!source || node.getAttribute("data-drawn")) return;
      var figure = JSON.parse(source.textContent);
      var layout = Object.assign({ autosize: true, margin: {}, legend: { orientation: "h", y: -0.25 } }, figure.layout || {});
      layout.margin = Object.assign({ t: 50, r: 10 }, layout.margin);
      if (window.innerWidth < 600) {
        // Phone: long axis labels eat the plot; keep a minimum drawing area.
        layout.margin.l = Math.min(layout.margin.l || 60, 90);
        layout.margin.b = Math.min(layout.margin.b || 60, 110);
        if (layout.title && layout.title.text) layout.title = Object.assign({}, layout.title, { font: { size: 12 } });
      }
      window.Plotly.react(node, figure.data || [], layout, CONFIG).then(function () {
        node.setAttribute("data-drawn", "true");
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
})();
