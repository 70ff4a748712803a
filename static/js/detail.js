/* Dataset detail page: a Leaflet map without tiles (Natural Earth land outlines from world-atlas,
   the bounding box and the validation towers) and a Chart.js chart of one tower's ET series. */
(function () {
  "use strict";
  const script = document.currentScript;
  const readJSON = (id) => JSON.parse(document.getElementById(id).textContent);

  function drawMap() {
    const el = document.getElementById("map");
    if (!el) return;
    const map = portalLand.baseMap(el, script.dataset.land);
    const bbox = readJSON("bbox-data");
    const stations = readJSON("stations-data");
    let bounds = L.latLngBounds([[-90, -180], [90, 180]]);
    if (bbox) {
      bounds = L.latLngBounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]]);
      L.rectangle(bounds, { color: "#1f5fa8", weight: 1.5, fill: false, dashArray: "4 3" }).addTo(map);
    }
    stations.forEach((s) => {
      L.circleMarker([s.lat, s.lon], { radius: 3, color: "#b0401f", weight: 1, fillOpacity: 0.8 })
        .bindTooltip(`${s.code} · KGE ${s.kge === null ? "–" : s.kge.toFixed(2)}`)
        .addTo(map);
    });
    map.fitBounds(bounds, { padding: [4, 4] });
  }

  let chart = null;
  function drawSeries(code) {
    const canvas = document.getElementById("series-chart");
    if (!canvas) return;
    fetch(`${canvas.dataset.url}?station=${encodeURIComponent(code)}`)
      .then((r) => r.json())
      .then((data) => {
        const held = data.is_validation.map((v) => v === true);
        const obsHeld = data.et_obs.map((v, i) => (held[i] ? v : null));
        const obsTrain = data.et_obs.map((v, i) => (held[i] ? null : v));
        const config = {
          type: "line",
          data: {
            labels: data.time,
            datasets: [
              { label: script.dataset.heldLabel, data: obsHeld, borderColor: "#b0401f",
                backgroundColor: "#b0401f", showLine: false, pointRadius: 3 },
              { label: script.dataset.trainLabel, data: obsTrain, borderColor: "#999",
                backgroundColor: "#999", showLine: false, pointRadius: 2 },
              { label: script.dataset.predLabel, data: data.et, borderColor: "#1f5fa8", pointRadius: 0,
                borderWidth: 1.5, spanGaps: false },
            ],
          },
          options: {
            animation: false, maintainAspectRatio: false,
            scales: { x: { ticks: { maxTicksLimit: 14 } }, y: { title: { display: true, text: script.dataset.unitsLabel } } },
            plugins: { title: { display: true, text: data.station } },
          },
        };
        if (chart) chart.destroy();
        chart = new Chart(canvas, config);
        window.portalChart = chart;
      });
  }

  drawMap();
  const select = document.getElementById("station-select");
  if (select) {
    select.addEventListener("change", () => drawSeries(select.value));
    drawSeries(select.value);
  }
})();
