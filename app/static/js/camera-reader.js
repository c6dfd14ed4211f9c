/* The phone's camera as a barcode reader, for the hub's scan mode and the courier app: Code 128 (the labels'
   barcode) and QR (the labels' tracking URL). The browser's own BarcodeDetector where it has one; elsewhere the
   vendored reader (barcode-detector's ponyfill over zxing-wasm, app/static/vendor/barcode-detector), loaded on
   first use, for the pages that name it. Typing the ID stays the fallback on every page.

   window.WaybillCameraReader.available(fallback) says whether the camera can read here;
   window.WaybillCameraReader.create(video, onCode, fallback) gives {start(), stop(), running()}, where
   `fallback` is {script, wasm} (the vendored files' URLs) or null for the browser's own reader only;
   window.WaybillCameraReader.detector(fallback) gives (a promise of) the reader itself, for any image. */
(function () {
  "use strict";

  var FORMATS = ["code_128", "qr_code"];
  var LOOK_EVERY_MS = 250;
  var SAME_CODE_MS = 3000; /* the camera sees one label many times a second: one read per label */

  function hasCamera() {
    return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }

  function available(fallback) {
    return hasCamera() && ("BarcodeDetector" in window || Boolean(fallback && window.WebAssembly));
  }

  function loadScript(url) {
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = url;
      script.onload = resolve;
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }

  function vendoredDetector(fallback) {
    var ready = window.BarcodeDetectionAPI ? Promise.resolve() : loadScript(fallback.script);
    return ready.then(function () {
      var api = window.BarcodeDetectionAPI;
      api.prepareZXingModule({
        overrides: {
          locateFile: function (path, prefix) { return /\.wasm$/.test(path) ? fallback.wasm : prefix + path; }
        }
      });
      return new api.BarcodeDetector({ formats: FORMATS });
    });
  }

  /* The browser's own reader when it reads our formats, else the vendored one (when the page has it). */
  function makeDetector(fallback) {
    if ("BarcodeDetector" in window) {
      return window.BarcodeDetector.getSupportedFormats().then(function (supported) {
        var formats = FORMATS.filter(function (format) { return supported.indexOf(format) >= 0; });
        if (formats.length || !fallback) {
          return new window.BarcodeDetector(formats.length ? { formats: formats } : undefined);
        }
        return vendoredDetector(fallback);
      });
    }
    return vendoredDetector(fallback);
  }

  function create(video, onCode, fallback) {
    var detector = null;
    var stream = null;
    var timer = null;
    var lastCode = null;
    var lastAt = 0;

    function look() {
      if (video.readyState < 2) { return; }
      detector.detect(video).then(function (codes) {
        if (!codes.length) { return; }
        var code = String(codes[0].rawValue || "").trim();
        var now = Date.now();
        if (code && (code !== lastCode || now - lastAt > SAME_CODE_MS)) {
          lastCode = code;
          lastAt = now;
          onCode(code);
        }
      }).catch(function () { /* a frame it could not read: try the next */ });
    }

    function stop() {
      window.clearInterval(timer);
      timer = null;
      if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); }
      stream = null;
      video.srcObject = null;
      video.hidden = true;
    }

    function start() {
      var found = detector ? Promise.resolve(detector) : makeDetector(fallback);
      return found.then(function (made) {
        detector = made;
        return navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
      }).then(function (media) {
        stream = media;
        video.srcObject = media;
        video.hidden = false;
        return video.play();
      }).then(function () {
        timer = window.setInterval(look, LOOK_EVERY_MS);
      }).catch(function (error) {
        stop();
        throw error;
      });
    }

    return { start: start, stop: stop, running: function () { return stream !== null; } };
  }

  window.WaybillCameraReader = { available: available, create: create, detector: makeDetector };
}());
