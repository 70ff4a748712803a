/* Validation browser (templates/validation/version.html): a Leaflet map of the validation stations,
   markers coloured by the chosen metric (recoloured when the metric changes), a legend, and a table
   sorted by clicking its headers. No tiles: Natural Earth land outlines (static/js/land.js). */
(function () {
  "use strict";
  const script = document.currentScript;
  const HIGHER_IS_BETTER = { kge: true, r: true, nse: true };
  const NO_NUMBER = "#9a9a9a";

  // Colour of a value in [lo, hi]: red (worse) through yellow to blue (better); for bias, the distance from 0.
  function colour(value, lo, hi, metric) {
    if (value === null || value === undefined || !isFinite(value)) return NO_NUMBER;
    let t;
    if (metric === "bias") {
      const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
      t = 1 - Math.min(Math.abs(value) / m, 1);
    } else {
      t = hi > lo ? (value - lo) / (hi - lo) : 0.5;
      t = Math.min(Math.max(t, 0), 1);
      if (!HIGHER_IS_BETTER[metric]) t = 1 - t;
    }
    const stops = [[178, 24, 43], [239, 138, 98], [253, 219, 119], [103, 169, 207], [33, 102, 172]];
    const x = t * (stops.length - 1);
    const i = Math.min(Math.floor(x), stops.length - 2);
    const f = x - i;
    const c = stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
    return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  }

  function range(markers, metric) {
    const values = markers.map((m) => m[metric]).filter((v) => v !== null && v !== undefined && isFinite(v));
    if (!values.length) return [0, 0];
    return [Math.min(...values), Math.max(...values)];
  }

  function drawMap() {
    const el = document.getElementById("validation-map");
    const data = document.getElementById("validation-markers");
    if (!el || !data) return;
    const markers = JSON.parse(data.textContent);
    const map = portalLand.baseMap(el, script.dataset.land);
    const layer = L.featureGroup().addTo(map);
    const select = document.getElementById("metric-select");
    const legend = document.getElementById("validation-legend");
    const stationUrl = script.dataset.stationUrl;

    function paint(metric) {
      layer.clearLayers();
      const [lo, hi] = range(markers, metric);
      markers.forEach((m) => {
        const value = m[metric];
        const fill = colour(value, lo, hi, metric);
        const shown = value === null || value === undefined ? (m.reason && metric === "kge" ? m.reason : script.dataset.noNumber) : value.toFixed(3);
        const marker = L.circleMarker([m.lat, m.lon], {
          radius: 6, color: "#333", weight: 1, fillColor: fill, fillOpacity: 0.9, className: "validation-marker",
        });
        marker.bindTooltip(`${m.label} (${m.split}) · ${metric} ${shown}`);
        marker.on("click", () => { window.location.href = stationUrl.replace("CODE", encodeURIComponent(m.label)); });
        marker.on("add", () => {  // the path exists once the map has a view (Leaflet defers it until then)
          const path = marker.getElement();
          path.dataset.label = m.label;
          path.dataset.value = value === null || value === undefined ? "" : String(value);
        });
        marker.addTo(layer);
      });
      if (legend) {
        legend.dataset.metric = metric;
        legend.innerHTML = "";
        const bar = document.createElement("span");
        bar.className = "legend-bar";
        const steps = [0, 0.25, 0.5, 0.75, 1].map((t) => colour(lo + t * (hi - lo), lo, hi, metric));
        bar.style.background = `linear-gradient(to right, ${steps.join(", ")})`;
        const low = document.createElement("span");
        low.textContent = `${metric} ${lo.toFixed(2)}`;
        const high = document.createElement("span");
        high.textContent = hi.toFixed(2);
        const none = document.createElement("span");
        none.className = "legend-none";
        none.textContent = script.dataset.noNumber;
        legend.append(low, bar, high, none);
      }
      window.validationMapMetric = metric;
    }

    paint(script.dataset.metric || "kge");
    if (markers.length) map.fitBounds(layer.getBounds().pad(0.2), { maxZoom: 6 });
    if (select) select.addEventListener("change", () => paint(select.value));
  }

  function sortableTable() {
    const table = document.getElementById("station-table");
    if (!table) return;
    const body = table.tBodies[0];
    table.querySelectorAll("th[data-key]").forEach((th, index) => {
      th.tabIndex = 0;
      const sort = () => {
        const descending = th.getAttribute("aria-sort") === "ascending";
        table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        const numeric = th.dataset.type === "number";
        const rows = Array.from(body.rows);
        const key = (row) => {
          const cell = row.cells[index];
          if (!numeric) return cell.textContent.trim();
          const v = cell.dataset.value;
          return v === undefined || v === "" ? null : parseFloat(v);
        };
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          if (x === null || x === "–") return y === null || y === "–" ? 0 : 1; // no number: last either way
          if (y === null || y === "–") return -1;
          const c = numeric ? x - y : String(x).localeCompare(String(y));
          return descending ? -c : c;
        });
        rows.forEach((r) => body.appendChild(r));
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
    });
  }

  drawMap();
  sortableTable();
})();
