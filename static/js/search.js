/* The catalogue search page (templates/catalog/dataset_list.html): a Leaflet map (plate carrée,
   Natural Earth land, no tiles) on which the user draws a rectangle with Leaflet-Geoman; its box
   (min_lon,min_lat,max_lon,max_lat, min_lon > max_lon across the antimeridian) goes into the form's
   bbox field and the search is sent again. The current box is drawn when the page has one. */
(function () {
  "use strict";
  const script = document.currentScript;
  const element = document.getElementById("search-map");
  const form = document.getElementById("search-form");
  const field = document.getElementById("search-bbox");
  if (!element || !form || !field || typeof L === "undefined") return;
  const box = element.closest("details");
  const map = portalLand.baseMap(element, script.dataset.land, { repeatEast: true });
  map.fitBounds([[-60, -180], [85, 180]]);
  const language = (document.documentElement.lang || "en").toLowerCase();
  map.pm.setLang(language.startsWith("zh") ? "zh" : "en");
  const PATH = { color: "#b0401f", weight: 2, fillOpacity: 0.12 };
  map.pm.setGlobalOptions({ continueDrawing: false, snappable: false, pathOptions: PATH, templineStyle: PATH });
  map.pm.addControls({ position: "topleft", drawMarker: false, drawCircleMarker: false, drawPolyline: false,
                       drawRectangle: true, drawPolygon: false, drawCircle: false, drawText: false, editMode: false,
                       dragMode: false, cutPolygon: false, removalMode: false, rotateMode: false });

  const round = (v) => String(Number(v.toFixed(2)));
  const normalLon = (lon) => ((((lon + 180) % 360) + 360) % 360) - 180;

  function boxOf(bounds) {
    const width = Math.min(bounds.getEast() - bounds.getWest(), 360);
    const south = Math.max(-90, bounds.getSouth());
    const north = Math.min(90, bounds.getNorth());
    if (width >= 360) return [-180, south, 180, north].map(round).join(",");
    const west = normalLon(bounds.getWest());
    let east = west + width;
    if (east > 180) east -= 360;  // across the antimeridian: min_lon > max_lon
    return [west, south, east, north].map(round).join(",");
  }

  if (field.value) {  // the current box, east of the antimeridian when it crosses it
    const [west, south, east, north] = field.value.split(",").map(Number);
    const bounds = L.latLngBounds([[south, west], [north, east < west ? east + 360 : east]]);
    L.rectangle(bounds, { ...PATH, interactive: false, pmIgnore: true }).addTo(map);
    map.fitBounds(bounds, { padding: [8, 8], maxZoom: 4 });
  }
  map.on("pm:create", (event) => {
    field.value = boxOf(event.layer.getBounds());
    form.requestSubmit();
  });
  if (box) box.addEventListener("toggle", () => map.invalidateSize());
})();
