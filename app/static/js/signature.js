/* Waybill: the shipment page's proof-of-delivery fields. Without this file the page still works: every proof
   field is shown and the server says which ones a status needs; only the drawn signature needs it. */
(function () {
  "use strict";

  /* Show only the proof fields of the chosen status (data-proof-for="<status>"). */
  function setUpStatusToggle() {
    var select = document.querySelector("[data-proof-status]");
    var groups = document.querySelectorAll("[data-proof-for]");
    if (!select || !groups.length) {
      return;
    }
    function toggle() {
      Array.prototype.forEach.call(groups, function (group) {
        group.hidden = group.getAttribute("data-proof-for") !== select.value;
      });
    }
    select.addEventListener("change", toggle);
    toggle();
  }

  /* The signature pad: pointer events (mouse, pen and touch alike), a Clear button, and the drawing kept as
     a PNG data URL in the hidden field, which is sent with the form. */
  function setUpSignaturePad() {
    var box = document.querySelector("[data-signature]");
    if (!box) {
      return;
    }
    var canvas = box.querySelector("[data-signature-pad]");
    var input = box.querySelector("[data-signature-input]");
    var clear = box.querySelector("[data-signature-clear]");
    var status = box.querySelector("[data-signature-status]");
    var context = canvas && canvas.getContext ? canvas.getContext("2d") : null;
    if (!context || !input || !window.PointerEvent) {
      return;
    }
    box.hidden = false;
    /* In the page's language when the page says it (data-text-captured). */
    var captured = box.getAttribute("data-text-captured") || "Signature captured";
    var drawing = false;
    var drawn = false;
    var last = null;

    function pen() {
      context.lineWidth = 3;
      context.lineCap = "round";
      context.lineJoin = "round";
      context.strokeStyle = "#1b1f24";
      context.fillStyle = "#1b1f24";
    }

    /* The canvas is scaled by CSS to its box: map the pointer into the canvas's own pixels. */
    function point(event) {
      var rect = canvas.getBoundingClientRect();
      return {
        x: (event.clientX - rect.left) * canvas.width / rect.width,
        y: (event.clientY - rect.top) * canvas.height / rect.height
      };
    }

    function save() {
      input.value = drawn ? canvas.toDataURL("image/png") : "";
      if (status) { status.textContent = drawn ? captured : ""; }
    }

    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      drawing = true;
      last = point(event);
      if (canvas.setPointerCapture) { canvas.setPointerCapture(event.pointerId); }
      context.beginPath();
      context.arc(last.x, last.y, 1.5, 0, 2 * Math.PI);
      context.fill();
      drawn = true;
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) {
        return;
      }
      var next = point(event);
      context.beginPath();
      context.moveTo(last.x, last.y);
      context.lineTo(next.x, next.y);
      context.stroke();
      last = next;
    });
    function finish() {
      if (drawing) {
        drawing = false;
        save();
      }
    }
    canvas.addEventListener("pointerup", finish);
    canvas.addEventListener("pointercancel", finish);
    canvas.addEventListener("lostpointercapture", finish);

    clear.addEventListener("click", function () {
      context.clearRect(0, 0, canvas.width, canvas.height);
      drawn = false;
      save();
    });

    pen();
    /* After a refused submit the page comes back with the signature in the hidden field: draw it again. */
    if (input.value.indexOf("data:image/png;base64,") === 0) {
      var previous = new Image();
      previous.onload = function () {
        context.drawImage(previous, 0, 0, canvas.width, canvas.height);
        drawn = true;
        if (status) { status.textContent = captured; }
      };
      previous.src = input.value;
    }
  }

  function start() {
    setUpStatusToggle();
    setUpSignaturePad();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
