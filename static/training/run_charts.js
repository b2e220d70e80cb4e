// Live metric charts of a training run: polls the run's metrics JSON and redraws with Plotly.
(function () {
  "use strict";
  const PANELS = [
    ["Loss", (k) => k === "loss" || k === "worst_group_loss"],
    ["Rewards (chosen / rejected)", (k) => k === "rewards/chosen" || k === "rewards/rejected" || k === "reward" || /^rewards\/welfare_.*\/mean$/.test(k)],
    ["Accuracy", (k) => k === "rewards/accuracies" || k === "accuracy" || k === "mean_token_accuracy"],
    ["Margins", (k) => k === "rewards/margins" || k === "margin"],
    ["Learning rate", (k) => k === "learning_rate"],
    ["Group weights", (k) => k.startsWith("group_weight/")],
  ];
  const FINAL = ["succeeded", "failed", "cancelled"];

  function draw(root, series) {
    const keys = Object.keys(series);
    const empty = document.getElementById("charts-empty");
    if (empty) empty.hidden = keys.length > 0;
    // Every panel's box exists before the first draw, so each chart is sized to its grid cell.
    const panels = PANELS.map(([title, match], i) => [title, i, keys.filter(match).map((k) => ({
      x: series[k].step, y: series[k].value, name: k.replace("group_weight/", ""), mode: "lines+markers", type: "scatter",
    }))]).filter(([, , traces]) => traces.length);
    panels.forEach(([title, i]) => {
      if (document.getElementById("chart-" + i)) return;
      const div = document.createElement("div");
      div.id = "chart-" + i;
      div.className = "chart";
      div.setAttribute("role", "img");
      div.setAttribute("aria-label", title + " by step");
      root.appendChild(div);
    });
    panels.forEach(([title, i, traces]) => {
      const last = Math.max(1, ...traces.map((t) => t.x[t.x.length - 1] || 1));
      const layout = {
        title: { text: title }, height: 280, margin: { l: 50, r: 10, t: 40, b: 40 },
        // Steps are whole numbers: no 1.5 ticks.
        xaxis: { title: { text: "step" }, tick0: 0, dtick: Math.max(1, Math.ceil(last / 8)) },
        legend: { orientation: "h" },
      };
      window.Plotly.react(document.getElementById("chart-" + i), traces, layout, { responsive: true, displaylogo: false });
    });
  }

  function poll(root) {
    fetch(root.dataset.metricsUrl, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((data) => {
        if (!data) return;
        if (window.Plotly) draw(root, data.series);
        if (!FINAL.includes(data.status)) setTimeout(() => poll(root), 3000);
      })
      .catch(() => setTimeout(() => poll(root), 5000));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const root = document.getElementById("charts");
    if (root) poll(root);
  });
})();
