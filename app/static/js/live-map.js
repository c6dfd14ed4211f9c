/* The live map (/admin/live): Leaflet (vendored), fed by the staff stream (server-sent events) and, when that
   fails, by asking for the page's JSON every POLL_SECONDS (If-None-Match: 304 when nothing changed). The table
   below the map is kept the same as the map, for keyboards and screen readers. No inline style: Leaflet places
   its layers through element.style (CSSOM), which the page's policy allows. */
(function () {
  "use strict";

  var POLL_SECONDS = 15;
  var FIGURES_SECONDS = 60;
  var MOVE_MS = 1000;

  function start() {
    var root = document.getElementById("live-figures");
    var mapElement = document.getElementById("live-map");
    if (!root || !mapElement || !window.L) {
      return;
    }
    var L = window.L;
    var jsonUrl = root.getAttribute("data-live-map-url");
    var courierUrl = root.getAttribute("data-courier-url");
    var eventsUrl = root.getAttribute("data-events-url");
    var modeLine = document.querySelector("[data-live-map-mode]");
    var etag = null;
    var couriers = {};
    var selected = null;
    var stopsLayer = null;

    function label(state) {
      return root.getAttribute("data-label-" + state) || state;
    }

    var map = L.map(mapElement, { zoomControl: true, attributionControl: true });
    var tileUrl = root.getAttribute("data-tile-url");
    if (tileUrl) {
      L.tileLayer(tileUrl, { maxZoom: 19, attribution: root.getAttribute("data-tile-attribution") || "" }).addTo(map);
    } else {
      mapElement.classList.add("live-map--plain");
    }
    map.setView([20.59, 78.96], 5);

    var zonesLayer = L.layerGroup().addTo(map);
    var couriersLayer = L.layerGroup().addTo(map);

    function text(value) {
      var span = document.createElement("span");
      span.textContent = value;
      return span;
    }

    function drawZones(collection) {
      zonesLayer.clearLayers();
      (collection.features || []).forEach(function (feature) {
        var outline = L.geoJSON(feature, { style: function () { return { className: "live-zone", weight: 2, fill: true, fillOpacity: 0.05 }; } });
        outline.bindTooltip(text(feature.properties.name + ": " + feature.properties.parcels_open), { sticky: true });
        zonesLayer.addLayer(outline);
        var hub = feature.properties.hub;
        if (hub) {
          var marker = L.circleMarker([hub.lat, hub.lon], { radius: 5, className: "live-hub" });
          marker.bindTooltip(text(feature.properties.name));
          zonesLayer.addLayer(marker);
        }
      });
    }

    function markerClass(state) {
      return "courier-marker courier-state--" + state;
    }

    function setState(marker, state) {
      var path = marker.getElement();
      if (path) {
        path.setAttribute("class", markerClass(state) + " leaflet-interactive");
        path.setAttribute("data-state", state);
      }
    }

    function glide(entry, to) {
      var from = entry.marker.getLatLng();
      var started = null;
      if (entry.frame) { window.cancelAnimationFrame(entry.frame); }
      function step(time) {
        if (started === null) { started = time; }
        var t = Math.min(1, (time - started) / MOVE_MS);
        entry.marker.setLatLng([from.lat + (to[0] - from.lat) * t, from.lng + (to[1] - from.lng) * t]);
        entry.frame = t < 1 ? window.requestAnimationFrame(step) : null;
        if (t >= 1) { entry.marker.getElement().setAttribute("data-lat", to[0]); entry.marker.getElement().setAttribute("data-lon", to[1]); }
      }
      entry.frame = window.requestAnimationFrame(step);
    }

    function updateRow(courier) {
      var body = document.querySelector("#live-couriers tbody");
      var row = body.querySelector("tr[data-username=\"" + window.CSS.escape(courier.username) + "\"]");
      if (!row) {
        row = document.createElement("tr");
        row.setAttribute("data-username", courier.username);
        var head = document.createElement("th");
        head.setAttribute("scope", "row");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "link-button";
        button.setAttribute("data-select-courier", courier.username);
        head.appendChild(button);
        row.appendChild(head);
        ["state", "last_seen_at", "position", "stops_open", "stops_at_risk", "stops_done", "cod_collected"].forEach(function (name) {
          var cell = document.createElement("td");
          cell.setAttribute("data-cell", name);
          row.appendChild(cell);
        });
        body.appendChild(row);
      }
      row.setAttribute("data-state", courier.state);
      row.querySelector("[data-select-courier]").textContent = courier.name;
      var stateCell = row.querySelector("[data-cell=state]");
      stateCell.textContent = "";
      var dot = document.createElement("span");
      dot.className = "legend__dot courier-state--" + courier.state;
      dot.setAttribute("aria-hidden", "true");
      stateCell.appendChild(dot);
      stateCell.appendChild(document.createTextNode(" " + label(courier.state)));
      row.querySelector("[data-cell=last_seen_at]").textContent = courier.last_seen_at || label("never");
      row.querySelector("[data-cell=position]").textContent = courier.position
        ? courier.position.lat.toFixed(5) + ", " + courier.position.lon.toFixed(5) : label("none");
      row.querySelector("[data-cell=stops_open]").textContent = courier.stops_open;
      row.querySelector("[data-cell=stops_at_risk]").textContent = courier.stops_at_risk;
      row.querySelector("[data-cell=stops_done]").textContent = courier.stops_done;
      row.querySelector("[data-cell=cod_collected]").textContent = "₹" + courier.cod_collected;
    }

    function showCourier(courier) {
      var entry = couriers[courier.username];
      if (courier.position) {
        var to = [courier.position.lat, courier.position.lon];
        if (!entry) {
          var marker = L.circleMarker(to, { radius: 9, className: markerClass(courier.state), weight: 2, fillOpacity: 0.9 });
          marker.bindTooltip(text(courier.name));
          marker.on("click", function () { select(courier.username); });
          marker.addTo(couriersLayer);
          entry = couriers[courier.username] = { marker: marker, frame: null };
          var path = marker.getElement();
          path.setAttribute("data-username", courier.username);
          path.setAttribute("data-lat", to[0]);
          path.setAttribute("data-lon", to[1]);
        } else {
          glide(entry, to);
        }
        setState(entry.marker, courier.state);
      } else if (entry) {
        couriersLayer.removeLayer(entry.marker);
        delete couriers[courier.username];
      }
      updateRow(courier);
      if (selected === courier.username) { fillDetail(courier, null); }
    }

    var detail = document.getElementById("live-courier");
    function fillDetail(courier, stops) {
      detail.querySelector("[data-courier-empty]").hidden = true;
      detail.querySelector("[data-courier-detail]").hidden = false;
      detail.querySelector("[data-courier-name]").textContent = courier.name || courier.username;
      detail.querySelector("[data-courier-state]").textContent = label(courier.state);
      detail.querySelector("[data-courier-seen]").textContent = courier.last_seen_at || label("never");
      detail.querySelector("[data-courier-cod]").textContent = "₹" + courier.cod_collected;
      if (stops === null) { return; }
      var list = detail.querySelector("[data-courier-stops]");
      list.textContent = "";
      if (stopsLayer) { map.removeLayer(stopsLayer); }
      stopsLayer = L.layerGroup().addTo(map);
      var line = [];
      stops.forEach(function (stop) {
        var item = document.createElement("li");
        item.textContent = stop.sequence + ". " + stop.tracking_id + " · " + stop.status + " · " + stop.destination;
        list.appendChild(item);
        if (stop.point) {
          line.push([stop.point.lat, stop.point.lon]);
          var marker = L.circleMarker([stop.point.lat, stop.point.lon], { radius: 6, className: "live-stop live-stop--" + stop.state });
          marker.bindTooltip(text(stop.sequence + ". " + stop.tracking_id));
          stopsLayer.addLayer(marker);
        }
      });
      if (line.length > 1) {
        stopsLayer.addLayer(L.polyline(line, { className: "live-route", weight: 2 }));
      }
    }

    function select(username) {
      selected = username;
      fetch(courierUrl.replace("USERNAME", encodeURIComponent(username)), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (found) { if (found && selected === username) { fillDetail(found.courier, found.stops); } })
        .catch(function () { /* the next change tries again */ });
    }

    document.addEventListener("click", function (event) {
      var button = event.target.closest("[data-select-courier]");
      if (button) { select(button.getAttribute("data-select-courier")); }
    });

    function showFigures(figures) {
      function percent(value) { return value === null ? "–" : Math.round(value * 100) + " %"; }
      root.querySelector("[data-figure=completion_rate]").textContent = percent(figures.completion_rate);
      root.querySelector("[data-figure=at_risk]").textContent = figures.at_risk;
      root.querySelector("[data-figure=utilisation]").textContent = percent(figures.utilisation);
    }

    var fitted = false;
    function showOverview(overview, withCouriers) {
      showFigures(overview.figures);
      drawZones(overview.zones);
      if (withCouriers) { overview.couriers.forEach(showCourier); }
      if (!fitted) {
        var bounds = L.latLngBounds([]);
        zonesLayer.eachLayer(function (layer) { if (layer.getBounds) { bounds.extend(layer.getBounds()); } else { bounds.extend(layer.getLatLng()); } });
        couriersLayer.eachLayer(function (layer) { bounds.extend(layer.getLatLng()); });
        if (bounds.isValid()) { map.fitBounds(bounds.pad(0.2), { maxZoom: 15 }); }
        fitted = true;
      }
    }

    function ask(withCouriers) {
      var headers = { "Accept": "application/json" };
      if (etag) { headers["If-None-Match"] = etag; }
      return fetch(jsonUrl, { headers: headers, cache: "no-store", credentials: "same-origin" })
        .then(function (response) {
          if (response.status !== 200) { return null; }
          etag = response.headers.get("ETag");
          return response.json();
        })
        .then(function (overview) { if (overview) { showOverview(overview, withCouriers); } })
        .catch(function () { /* offline for a moment: next time */ });
    }

    var stream = null;
    var pollTimer = null;
    function streaming() { return stream !== null && stream.readyState === window.EventSource.OPEN; }
    function poll() {
      window.clearTimeout(pollTimer);
      if (streaming()) { return; }
      ask(true).then(function () { pollTimer = window.setTimeout(poll, POLL_SECONDS * 1000); });
    }
    function mode(name) {
      root.setAttribute("data-live-mode", name);
    }

    function listen() {
      if (!eventsUrl || !window.EventSource) { return false; }
      stream = new window.EventSource(eventsUrl);
      stream.addEventListener("open", function () { mode("stream"); window.clearTimeout(pollTimer); });
      stream.addEventListener("courier", function (event) { showCourier(JSON.parse(event.data)); });
      stream.addEventListener("shipment", function () { if (selected) { select(selected); } });
      stream.addEventListener("alert", function (event) {
        var alert = JSON.parse(event.data);
        if (modeLine) { modeLine.textContent = alert.kind + (alert.tracking_id ? " · " + alert.tracking_id : "") + (alert.courier ? " · " + alert.courier : ""); }
      });
      stream.addEventListener("error", function () {
        mode("poll");
        if (stream.readyState === window.EventSource.CLOSED) { stream = null; }
        pollTimer = window.setTimeout(poll, POLL_SECONDS * 1000);
      });
      return true;
    }

    ask(true).then(function () {
      if (!listen()) { mode("poll"); poll(); }
    });
    window.setInterval(function () { ask(!streaming()); }, FIGURES_SECONDS * 1000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
