/* Natural Earth land (world-atlas TopoJSON) as planar GeoJSON for the portal's Leaflet maps
   (static/js/detail.js, subset.js, search.js): window.portalLand.planar(topo, {repeatEast}) and
   window.portalLand.baseMap(element, landUrl, {repeatEast, maxZoom}). */
(function () {
  "use strict";
  // world-atlas rings are spherical: Eurasia, Fiji and Wrangel Island cross the antimeridian, which a
  // plane map would draw as bands across the globe. Unwrap such rings (two crossings) past ±180° and
  // repeat them on the other side; Antarctica (one crossing: it circles the pole) is kept as it is.
  function unwrapRing(ring) {
    let shift = 0;
    let prev = ring[0][0];
    return ring.map(([lon, lat]) => {
      if (lon + shift - prev > 180) shift -= 360;
      else if (lon + shift - prev < -180) shift += 360;
      prev = lon + shift;
      return [prev, lat];
    });
  }

  function planar(topo, options) {
    const collection = topojson.feature(topo, topo.objects.land);
    const polygons = [];
    (collection.features || [collection]).forEach((f) => {
      const g = f.geometry;
      (g.type === "Polygon" ? [g.coordinates] : g.coordinates).forEach((poly) => {
        const outer = poly[0];
        const crossings = outer.filter((p, i) => i > 0 && Math.abs(p[0] - outer[i - 1][0]) > 180).length;
        if (crossings === 0 || crossings % 2 === 1) {
          polygons.push(poly);
          return;
        }
        const rings = poly.map(unwrapRing);
        const lons = rings[0].map((p) => p[0]);
        const offset = Math.max(...lons) > 180 ? -360 : 360;
        polygons.push(rings, rings.map((r) => r.map(([lon, lat]) => [lon + offset, lat])));
      });
    });
    if (options && options.repeatEast) {  // the land once more east of the antimeridian (boxes drawn across it)
      polygons.push(...polygons.map((p) => p.map((r) => r.map(([lon, lat]) => [lon + 360, lat]))));
    }
    return { type: "MultiPolygon", coordinates: polygons };
  }

  // The portal's base map: plate carrée (EPSG:4326; with no tiles to match, it shows the whole globe,
  // poles included, without Web Mercator's blow-up of high latitudes), Natural Earth land in a pane
  // below boxes and markers (overlay pane: 400), fetched from landUrl. options.repeatEast: the land
  // once more east of the antimeridian (maps where boxes are drawn across it).
  function baseMap(element, landUrl, options) {
    const repeatEast = Boolean(options && options.repeatEast);
    const map = L.map(element, { crs: L.CRS.EPSG4326, minZoom: -2, maxZoom: (options && options.maxZoom) || 10,
                                 zoomSnap: 0.25, maxBounds: [[-95, -200], [95, repeatEast ? 380 : 200]],
                                 attributionControl: true });
    map.attributionControl.addAttribution("Natural Earth (world-atlas)");
    map.createPane("land").style.zIndex = 350;
    if (typeof topojson !== "undefined" && landUrl) {
      fetch(landUrl).then((r) => r.json()).then((topo) => {
        L.geoJSON(planar(topo, { repeatEast: repeatEast }), { pane: "land", interactive: false, pmIgnore: true,
                  style: { color: "#7a8a7a", weight: 0.6, fillColor: "#e6ede3", fillOpacity: 1 } }).addTo(map);
      });
    }
    return map;
  }

  window.portalLand = { planar: planar, baseMap: baseMap };
})();
