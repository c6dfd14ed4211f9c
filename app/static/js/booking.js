/* The booking form, enhanced. As the visitor types: whether we deliver to the destination's PIN code, with cash
   on delivery and express (GET /serviceability/<pincode>), and what the booking will cost (GET /quote); the
   amount to collect is shown only for cash on delivery. Without this file the form books all the same, with the
   amount always shown. Every word said comes from the form's data-text-* attributes, in the page's language;
   when an answer cannot be had (network, rate limit), nothing is said rather than something wrong. */
(function () {
  "use strict";

  var DELAY_MS = 400;
  var PINCODE = /^[1-9][0-9]{5}$/;
  /* A six-digit group in an address, also written "682 016", not part of a longer run of digits (as
     app.domain.pincodes.pincode_from_destination reads it: the last such group). */
  var PINCODE_IN_TEXT = /(?<![0-9])[0-9]{3} ?[0-9]{3}(?![0-9])/g;
  var PRICING_FIELDS = ["sender_pincode", "weight_kg", "length_cm", "width_cm", "height_cm", "service", "payment",
                        "cod_amount"];

  /* Devanagari digits as ASCII ("६८२०१६" is 682016), spaces at the ends dropped. */
  function asciiDigits(value) {
    return value.replace(/[\u0966-\u096f]/g, function (digit) {
      return String(digit.charCodeAt(0) - 0x966);
    }).trim();
  }

  /* "682016" from "682016" or "682 016"; null for anything else. */
  function pincodeOf(value) {
    var text = asciiDigits(value);
    if (/^[0-9]{3} [0-9]{3}$/.test(text)) {
      text = text.replace(" ", "");
    }
    return PINCODE.test(text) ? text : null;
  }

  function lastPincodeIn(address) {
    var groups = asciiDigits(address).match(PINCODE_IN_TEXT);
    return groups ? pincodeOf(groups[groups.length - 1]) : null;
  }

  /* "61360.00" → "₹61,360.00": Indian grouping, as the pages write amounts. */
  function rupees(amount) {
    var parts = String(amount).split(".");
    var whole = parts[0];
    var grouped = whole.length > 3
      ? whole.slice(0, -3).replace(/\B(?=([0-9]{2})+$)/g, ",") + "," + whole.slice(-3)
      : whole;
    return "\u20b9" + grouped + (parts.length > 1 ? "." + parts[1] : "");
  }

  /* A page sentence with its {name} slots filled (a function, so a "$" in a value stays itself). */
  function fill(sentence, values) {
    return sentence.replace(/\{([a-z_]+)\}/g, function (slot, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? values[name] : slot;
    });
  }

  /* {status, body} for a 200 or a 400 answer; null for anything else, or no answer at all. */
  function askJson(url, signal) {
    return fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin", signal: signal })
      .then(function (response) {
        if (response.status !== 200 && response.status !== 400) {
          return null;
        }
        return response.json().then(function (body) {
          return { status: response.status, body: body };
        });
      })
      .catch(function () { return null; });
  }

  function setUp(form) {
    var words = function (name) { return form.getAttribute("data-text-" + name) || ""; };
    var pincodeInput = form.elements.destination_pincode;
    var address = form.elements.destination;
    var service = form.elements.service;
    var payment = form.elements.payment;
    var codAmount = form.elements.cod_amount;
    var codBlock = form.querySelector("[data-booking-cod]");
    var answer = form.querySelector("[data-booking-answer]");
    var estimate = form.querySelector("[data-booking-estimate]");
    var codOption = payment && payment.querySelector("option[value=cod]");
    var expressOption = service && service.querySelector("option[value=express]");
    if (!pincodeInput || !address || !service || !payment || !codAmount || !answer || !estimate || !window.fetch) {
      return;
    }
    var offer = null; /* the pre-check's answer for the destination as it stands: {pincode, served, cod, ...} */
    var checkTimer = null;
    var quoteTimer = null;
    var checking = null;
    var quoting = null;

    function say(region, sentence, tone) {
      if (region.textContent !== sentence) {
        region.textContent = sentence;
      }
      region.setAttribute("data-tone", sentence ? tone || "" : "");
    }

    /* The PIN code the booking will go to: the one typed in its field, else the last one of the address. */
    function destination() {
      if (pincodeInput.value.trim()) {
        return { pincode: pincodeOf(pincodeInput.value), typed: true };
      }
      return { pincode: lastPincodeIn(address.value), typed: false };
    }

    /* Only what the answer rules out is disabled: without an answer every option stays. */
    function offerOptions(found) {
      if (codOption) { codOption.disabled = Boolean(found) && !found.cod; }
      if (expressOption) { expressOption.disabled = Boolean(found) && !found.express; }
    }

    function notServedHere(pincode) {
      return offer !== null && offer.pincode === pincode && !offer.served;
    }

    function tell(found, typed) {
      if (found.served) {
        var place = [found.city, found.state].filter(Boolean).join(", ") || found.pincode;
        say(answer, fill(words("served"), {
          place: place,
          cod: words(found.cod ? "cod-yes" : "cod-no"),
          express: words(found.express ? "express-yes" : "express-no")
        }), "served");
      } else if (found.city || found.state) {
        say(answer, fill(words("not-served"), { pincode: found.pincode }), "refused");
      } else if (typed) {
        say(answer, fill(words("unknown"), { pincode: found.pincode }), "refused");
      } else {
        /* A six-digit group of the address that is no PIN code: the booking ignores it, and so do we. */
        say(answer, "");
      }
    }

    function checkDestination() {
      var target = destination();
      if (checking) { checking.abort(); checking = null; }
      if (!target.pincode) {
        offer = null;
        offerOptions(null);
        var typed = asciiDigits(pincodeInput.value).replace(" ", "");
        var malformed = target.typed && (typed.length >= 6 || /[^0-9]/.test(typed));
        say(answer, malformed ? words("malformed") : "", "refused");
        return;
      }
      if (offer && offer.pincode === target.pincode) {
        tell(offer, target.typed);
        return;
      }
      checking = new AbortController();
      var url = form.getAttribute("data-serviceability-url").replace("PINCODE", target.pincode);
      askJson(url, checking.signal).then(function (reply) {
        if (destination().pincode !== target.pincode) {
          return; /* the visitor has typed on: a newer check is on its way */
        }
        if (!reply || reply.status !== 200) {
          offer = null;
          offerOptions(null);
          say(answer, reply && target.typed ? words("malformed") : "", "refused");
          return;
        }
        offer = reply.body;
        offerOptions(offer);
        tell(offer, target.typed);
        if (!offer.served) {
          say(estimate, "");
        }
      });
    }

    /* The query for /quote, or null while the fields cannot make one (no destination, a half-typed sender PIN). */
    function quoteQuery(target) {
      if (!target.pincode) {
        return null;
      }
      var query = new URLSearchParams();
      query.set("destination_pincode", target.pincode);
      for (var i = 0; i < PRICING_FIELDS.length; i += 1) {
        var field = form.elements[PRICING_FIELDS[i]];
        var value = field && !field.disabled ? field.value.trim() : "";
        if (PRICING_FIELDS[i] === "sender_pincode" && value) {
          value = pincodeOf(value);
          if (!value) {
            return null;
          }
        }
        if (value) {
          query.set(PRICING_FIELDS[i], value);
        }
      }
      return query.toString();
    }

    function updateEstimate() {
      var target = destination();
      var query = quoteQuery(target);
      if (quoting) { quoting.abort(); quoting = null; }
      if (!query || notServedHere(target.pincode)) {
        say(estimate, "");
        return;
      }
      quoting = new AbortController();
      askJson(form.getAttribute("data-quote-url") + "?" + query, quoting.signal).then(function (reply) {
        if (quoteQuery(destination()) !== query) {
          return; /* a field changed meanwhile: its own estimate is on its way */
        }
        if (!reply || reply.status !== 200 || !reply.body.charges || notServedHere(target.pincode)) {
          say(estimate, "");
          return;
        }
        var charges = reply.body.charges;
        var withCod = charges.cod_fee !== "0.00";
        say(estimate, fill(words(withCod ? "estimate-cod" : "estimate"), {
          total: rupees(charges.total), freight: rupees(charges.freight), cod_fee: rupees(charges.cod_fee),
          tax: rupees(charges.tax)
        }), "estimate");
      });
    }

    /* The amount to collect, for cash on delivery only. Hidden, it is also disabled, so it is not sent; it stays
       in view while it carries an error, so that the error can be read and fixed. */
    function showCodAmount() {
      if (!codBlock) {
        return;
      }
      var shown = payment.value === "cod" || codBlock.querySelector(".field--error") !== null;
      codBlock.hidden = !shown;
      codAmount.disabled = !shown;
    }

    function later(work, timer) {
      window.clearTimeout(timer);
      return window.setTimeout(work, DELAY_MS);
    }

    function destinationChanged() {
      checkTimer = later(checkDestination, checkTimer);
      quoteTimer = later(updateEstimate, quoteTimer);
    }

    function pricingChanged() {
      quoteTimer = later(updateEstimate, quoteTimer);
    }

    pincodeInput.addEventListener("input", destinationChanged);
    address.addEventListener("input", function () {
      if (!pincodeInput.value.trim()) {
        destinationChanged();
      }
    });
    PRICING_FIELDS.forEach(function (name) {
      var field = form.elements[name];
      if (field) {
        field.addEventListener(field.tagName === "SELECT" ? "change" : "input", pricingChanged);
      }
    });
    payment.addEventListener("change", showCodAmount);

    showCodAmount();
    if (destination().pincode) { /* the page came back with a destination: answer for it at once */
      checkDestination();
      updateEstimate();
    }
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-booking-form]"), setUp);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
