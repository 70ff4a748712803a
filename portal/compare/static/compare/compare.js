/* Versions side by side: the domain-mean difference chart and the map legend's colour ramp. */
(function () {
  "use strict";
  var ramp = document.getElementById("compare-ramp");
  if (ramp && ramp.dataset.ramp) {
    ramp.style.backgroundImage = ramp.dataset.ramp; // CSSOM, allowed under the CSP (no inline style)
  }
  var data = document.getElementById("compare-series-data");
  var canvas = document.getElementById("compare-series");
  if (!data || !canvas || typeof Chart === "undefined") return;
  var series = JSON.parse(data.textContent);
  var units = (document.getElementById("compare-grid") || {}).dataset.units || "";
  var labels = series.time.map(function (t) { return t.slice(0, 10); });
  canvas.chart = new Chart(canvas, {
    type: "line",
    data: {
      labels: labels,
      datasets: [
        { label: canvas.dataset.meanLabel + " (" + units + ")", data: series.mean_difference, borderColor: "#b2182b", pointRadius: 1, spanGaps: false },
        { label: canvas.dataset.rmsLabel + " (" + units + ")", data: series.rms_difference, borderColor: "#2166ac", pointRadius: 1, spanGaps: false }
      ]
    },
    options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { title: { display: true, text: units } } } }
  });
  document.body.dataset.compareChart = "ready";
})();
