/* Waybill: small enhancements only. Every page works without this file. */
(function () {
  "use strict";

  /* After a failed submit, take keyboard and screen-reader users to the list of problems. */
  function focusErrorSummary() {
    var summary = document.querySelector("[data-focus-on-load]");
    if (summary) {
      summary.focus();
    }
  }

  /* "Copy tracking ID": shown only when the clipboard can be used. */
  function setUpCopyButtons() {
    var buttons = document.querySelectorAll("[data-copy-target]");
    Array.prototype.forEach.call(buttons, function (button) {
      var source = document.getElementById(button.getAttribute("data-copy-target"));
      var status = button.parentNode.querySelector("[data-copy-status]");
      if (!source || !navigator.clipboard || !window.isSecureContext) {
        button.hidden = true;
        return;
      }
      button.removeAttribute("data-pending");
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          if (status) { status.textContent = "Copied"; }
          button.textContent = "Copied";
          window.setTimeout(function () {
            button.textContent = "Copy tracking ID";
            if (status) { status.textContent = ""; }
          }, 2500);
        }, function () {
          if (status) { status.textContent = "Copy failed: select the ID and copy it yourself."; }
        });
      });
    });
  }

  /* The tracking page's live part: ask every N seconds whether anything changed (If-None-Match);
     a 304 costs no body, a 200 brings the new status, progress bar and timeline. */
  function setUpLiveTimeline() {
    var region = document.querySelector("[data-live-url]");
    if (!region || !window.fetch) {
      return;
    }
    var url = region.getAttribute("data-live-url");
    var etag = region.getAttribute("data-live-etag");
    var seconds = Math.max(1, parseInt(region.getAttribute("data-refresh-seconds"), 10) || 30);
    var announcer = document.querySelector("[data-live-announcer]");
    var note = document.querySelector("[data-live-note]");
    var timer = null;
    var busy = false;

    function isFinal() {
      return region.querySelector("[data-final]") !== null;
    }

    function schedule() {
      window.clearTimeout(timer);
      if (!isFinal()) {
        timer = window.setTimeout(check, seconds * 1000);
      } else if (note) {
        note.hidden = true;
      }
    }

    function check() {
      if (document.hidden || busy) {
        schedule();
        return;
      }
      busy = true;
      var headers = { "Accept": "text/html" };
      if (etag) { headers["If-None-Match"] = "\"" + etag + "\""; }
      fetch(url, { headers: headers, cache: "no-store", credentials: "same-origin" })
        .then(function (response) {
          if (response.status !== 200) {
            return null;
          }
          var tag = response.headers.get("ETag");
          if (tag) { etag = tag.replace(/^W\//, "").replace(/"/g, ""); }
          return response.text();
        })
        .then(function (html) {
          if (html) {
            var before = region.querySelector("[data-status]");
            region.innerHTML = html;
            var after = region.querySelector("[data-status]");
            if (announcer && after && (!before || before.getAttribute("data-status") !== after.getAttribute("data-status"))) {
              announcer.textContent = "Status updated: " + after.getAttribute("data-status");
            }
          }
        })
        .catch(function () { /* offline for a moment: try again next time */ })
        .then(function () {
          busy = false;
          schedule();
        });
    }

    /* Push first: the stream (server-sent events) says "changed" within a second and the fragment is fetched
       at once. While it is open the timer rests; when it fails (not served here, offline, closed for a
       deployment) the page goes back to asking every N seconds until the stream is open again. */
    var eventsUrl = region.getAttribute("data-events-url");
    var stream = null;
    function listen() {
      if (!eventsUrl || !window.EventSource || isFinal()) {
        return false;
      }
      stream = new window.EventSource(eventsUrl);
      stream.addEventListener("open", function () {
        window.clearTimeout(timer);
        region.setAttribute("data-live-mode", "stream");
      });
      stream.addEventListener("message", function () {
        check();
      });
      stream.addEventListener("error", function () {
        region.setAttribute("data-live-mode", "poll");
        if (stream.readyState === window.EventSource.CLOSED) {
          stream = null;  /* refused (503, 429): polling from now on */
        }
        schedule();
      });
      return true;
    }

    function streaming() {
      return stream !== null && stream.readyState === window.EventSource.OPEN;
    }

    var polled = schedule;
    schedule = function () {
      if (isFinal() && stream) { stream.close(); stream = null; }
      if (streaming()) { return; }
      polled();
    };

    if (note && !isFinal()) { note.removeAttribute("data-pending"); }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { check(); }
    });
    if (!listen()) {
      region.setAttribute("data-live-mode", "poll");
    }
    schedule();
  }

  function start() {
    focusErrorSummary();
    setUpCopyButtons();
    setUpLiveTimeline();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
