/* Scan mode: each scan is sent at once (POST /admin/scans, JSON) and answered on the page with a line, a sound
   and a vibration. Without this file the page is a plain form that posts one ID (Enter) or a textarea of many. */
(function () {
  "use strict";

  var MAX_SHOWN = 50;

  /* The words the page adds, in the page's language: data-text-* attributes on the form (English if absent). */
  function word(name, english) {
    var form = document.querySelector("form[data-scan-url]");
    return (form && form.getAttribute("data-text-" + name)) || english;
  }

  function splitIds(text) {
    return text.split(/[\n,]/).map(function (part) { return part.trim(); }).filter(Boolean);
  }

  /* Short tones through WebAudio: high for accepted, two low ones for refused. */
  var audio = null;
  function tone(context, frequency, start, length) {
    var oscillator = context.createOscillator();
    var gain = context.createGain();
    oscillator.frequency.value = frequency;
    gain.gain.setValueAtTime(0.2, context.currentTime + start);
    gain.gain.exponentialRampToValueAtTime(0.001, context.currentTime + start + length);
    oscillator.connect(gain);
    gain.connect(context.destination);
    oscillator.start(context.currentTime + start);
    oscillator.stop(context.currentTime + start + length);
  }

  function cue(ok) {
    try {
      var AudioContext = window.AudioContext || window.webkitAudioContext;
      if (AudioContext) {
        audio = audio || new AudioContext();
        if (ok) {
          tone(audio, 1320, 0, 0.12);
        } else {
          tone(audio, 220, 0, 0.18);
          tone(audio, 220, 0.25, 0.18);
        }
      }
    } catch (error) { /* no sound on this device: the line on the page still says it */ }
    if (navigator.vibrate) {
      navigator.vibrate(ok ? 60 : [120, 80, 120]);
    }
  }

  function setUp(form) {
    var url = form.getAttribute("data-scan-url");
    var input = form.querySelector("[data-scan-input]");
    var many = form.querySelector("textarea[name=tracking_ids]");
    var list = form.querySelector("[data-scan-results]");
    var last = form.querySelector("[data-scan-last]");
    var empty = form.querySelector("[data-scan-empty]");
    var acceptedOut = form.querySelector("[data-scan-accepted]");
    var refusedOut = form.querySelector("[data-scan-refused]");
    var acceptedField = form.querySelector("input[name=accepted_so_far]");
    var refusedField = form.querySelector("input[name=refused_so_far]");
    var token = form.querySelector("input[name=csrf_token]").value;
    var accepted = parseInt(acceptedField.value, 10) || 0;
    var refused = parseInt(refusedField.value, 10) || 0;

    function value(name) {
      var field = form.elements.namedItem(name);
      return field && field.value.trim() ? field.value.trim() : null;
    }

    function showCounts() {
      acceptedOut.textContent = String(accepted);
      refusedOut.textContent = String(refused);
      acceptedField.value = String(accepted);
      refusedField.value = String(refused);
    }

    function addLine(result) {
      var item = document.createElement("li");
      item.className = "scan-result scan-result--" + (result.ok ? "ok" : "refused");
      var verdict = document.createElement("span");
      verdict.className = "scan-result__verdict";
      verdict.textContent = result.ok ? word("accepted", "Accepted") : word("refused", "Refused");
      var id = document.createElement("span");
      id.className = "code scan-result__id";
      id.textContent = result.tracking_id;
      var what = document.createElement("span");
      what.className = "scan-result__what";
      what.textContent = result.ok ? result.status : result.error;
      item.appendChild(verdict);
      item.appendChild(id);
      item.appendChild(what);
      list.insertBefore(item, list.firstChild);
      while (list.children.length > MAX_SHOWN) {
        list.removeChild(list.lastChild);
      }
      if (empty) { empty.hidden = true; }
    }

    function problem(message, ids) {
      last.textContent = word("not-recorded", "Not recorded:") + " " + message;
      last.className = "scan-last scan-last--refused";
      if (ids && !input.value) { input.value = ids.join(" "); }
      cue(false);
    }

    function send(ids) {
      var body = {
        status: value("status"), location: value("location"), note: value("note"),
        received_by: value("received_by"), attempt_reason: value("attempt_reason"), tracking_ids: ids
      };
      Object.keys(body).forEach(function (key) { if (body[key] === null) { delete body[key]; } });
      fetch(url, {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": token },
        body: JSON.stringify(body)
      }).then(function (response) {
        return response.json().then(function (answer) { return { status: response.status, answer: answer }; },
                                     function () { return { status: response.status, answer: {} }; });
      }).then(function (reply) {
        var answer = reply.answer;
        if (reply.status !== 200 || !answer.results) {
          var fields = answer.fields ? Object.keys(answer.fields).map(function (k) { return answer.fields[k]; }) : [];
          problem(fields.length ? fields.join(" ") : (answer.error || "the server answered " + reply.status + "."), ids);
          return;
        }
        answer.results.forEach(addLine);
        accepted += answer.accepted;
        refused += answer.refused;
        showCounts();
        var newest = answer.results[answer.results.length - 1];
        last.textContent = (newest.ok ? word("accepted", "Accepted") : word("refused", "Refused")) + " " +
          newest.tracking_id + ": " + (newest.ok ? newest.status : newest.error) +
          (answer.results.length > 1 ? " (" + answer.accepted + " " + word("accepted-count", "accepted") + ", " +
            answer.refused + " " + word("refused-count", "refused") + ")" : "");
        last.className = "scan-last scan-last--" + (answer.refused ? "refused" : "ok");
        cue(answer.refused === 0);
      }).catch(function () {
        problem("no connection to the server. Scan it again.", ids);
      });
    }

    function submitIds(ids) {
      if (!ids.length) {
        problem("scan or type a tracking ID first.");
        input.focus();
        return;
      }
      send(ids);
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var ids = input.value.trim() ? [input.value.trim()] : [];
      if (many) { ids = ids.concat(splitIds(many.value)); }
      input.value = "";
      if (many) { many.value = ""; }
      submitIds(ids);
      input.focus();
    });

    setUpCamera(form, submitIds);
  }

  /* The phone's camera, where the browser can read barcodes itself (camera-reader.js); typing stays the
     fallback. */
  function setUpCamera(form, submitIds) {
    var box = form.querySelector("[data-scan-camera]");
    var reader = window.WaybillCameraReader;
    if (!box || !reader || !reader.available(null)) {
      return;
    }
    var toggle = box.querySelector("[data-scan-camera-toggle]");
    var camera = reader.create(box.querySelector("[data-scan-video]"), function (code) { submitIds([code]); }, null);
    box.hidden = false;

    function showStopped() {
      toggle.textContent = word("camera-start", "Scan with the camera");
    }

    toggle.addEventListener("click", function () {
      if (camera.running()) {
        camera.stop();
        showStopped();
        return;
      }
      camera.start().then(function () {
        toggle.textContent = word("camera-stop", "Stop the camera");
      }, showStopped);
    });
  }

  function start() {
    var form = document.querySelector("form[data-scan-url]");
    if (form && window.fetch) { setUp(form); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
