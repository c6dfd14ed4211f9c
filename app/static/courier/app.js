/* The courier app (/courier/): the day's stops, the actions at the door, and the position while on shift.

   Offline first: every action is kept on the phone first (store.js: a client UUID and the time it happened),
   shown as waiting on its stop, and sent to POST /courier/events when the connection allows (at once, when the
   phone comes online, when the app becomes visible again, and every 30 s). The server answers each action:
   applied or duplicate (it has it: the phone forgets it) or refused (kept, with the reason, until the courier
   dismisses it). A replayed action is never applied twice: the server knows it by its id.

   Everything the page says comes from the server in the page's language (data-setup's `words`, and the markup
   itself). The stops list comes from GET /courier/stops, kept on the phone for the next offline start. */
(function () {
  "use strict";

  const root = document.querySelector("[data-courier-app]");
  const store = window.WaybillCourierStore;
  if (!root || !store || !store.available() || !window.fetch) { return; }
  const setup = JSON.parse(root.getAttribute("data-setup"));
  const courier = setup.courier;
  const language = document.documentElement.lang || "en";
  const STATUS_OF = { delivered: "Delivered", attempted: "Delivery Attempted", picked_up: "Picked Up" };
  const SEND_EVERY_MS = 30000;
  const BYTES_PER_REQUEST = 2000000; /* photos travel with their actions: a few a request */
  const PHOTO_LONGER_SIDE = 1280;
  const PHOTO_QUALITY = 0.7;

  const state = {
    answer: null, /* GET /courier/stops's last answer: {courier, date, stops} */
    savedAt: null, /* when it was fetched */
    fromPhone: false, /* shown from the phone's copy: the server could not be reached */
    actions: [], /* this courier's kept actions, oldest first */
    token: setup.csrf_token,
    signedOut: false,
    loading: true, /* until the server or the phone's copy has answered once */
    bytesPerRequest: BYTES_PER_REQUEST
  };

  /* --- words and small helpers ------------------------------------------------------------------------------ */

  function say(key, values) {
    return (setup.words[key] || key).replace(/%\((\w+)\)s/g, function (whole, name) {
      return values && name in values ? String(values[name]) : whole;
    });
  }

  function find(selector, within) {
    return (within || root).querySelector(selector);
  }

  function setText(within, selector, text) {
    const element = find(selector, within);
    element.textContent = text || "";
    element.hidden = !text;
    return element;
  }

  function statusLabel(status) {
    return setup.statuses[status] || status;
  }

  function slug(status) {
    return String(status).toLowerCase().split(/\s+/).join("-");
  }

  function clock(iso) {
    return new Intl.DateTimeFormat(language, { hour: "2-digit", minute: "2-digit", timeZone: setup.timezone })
      .format(new Date(iso));
  }

  function day(isoDate) {
    return new Intl.DateTimeFormat(language, { day: "2-digit", month: "short", year: "numeric", timeZone: "UTC" })
      .format(new Date(isoDate + "T00:00:00Z"));
  }

  /* For reading only: amounts travel as the decimal strings they are. */
  function rupees(amount) {
    return new Intl.NumberFormat(language + "-IN", { style: "currency", currency: "INR" }).format(Number(amount));
  }

  function newId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  function sendJson(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": state.token },
      body: JSON.stringify(body)
    });
  }

  /* --- connection and sign-in ------------------------------------------------------------------------------- */

  const net = find("[data-net]");

  function showOnline(online) {
    net.dataset.state = online ? "online" : "offline";
    net.textContent = online ? say("online") : say("offline");
  }

  function showSignedOut() {
    state.signedOut = true;
    find("[data-sign-in]").hidden = false;
  }

  /* A page kept from an earlier session carries that session's CSRF token: ask the server for the page again
     and take the token from it. */
  async function refreshToken() {
    try {
      const response = await fetch(setup.urls.page, { credentials: "same-origin", cache: "no-store",
                                                      headers: { "Accept": "text/html" } });
      const fresh = response.ok && !response.redirected
        ? new DOMParser().parseFromString(await response.text(), "text/html").querySelector("[data-courier-app]")
        : null;
      if (!fresh) {
        if (response.redirected || response.status === 401) { showSignedOut(); }
        return false;
      }
      state.token = JSON.parse(fresh.getAttribute("data-setup")).csrf_token;
      return true;
    } catch (error) {
      return false;
    }
  }

  /* --- the stops -------------------------------------------------------------------------------------------- */

  function stops() {
    return state.answer && Array.isArray(state.answer.stops) ? state.answer.stops : [];
  }

  function actionsOf(trackingId) {
    return state.actions.filter(function (action) { return action.tracking_id === trackingId; });
  }

  /* A stop as this phone knows it: an action waiting to be sent has already changed it. */
  function asOnPhone(stop) {
    const waiting = actionsOf(stop.tracking_id).filter(function (action) { return action.state === "waiting"; });
    if (!waiting.length) { return stop; }
    return Object.assign({}, stop, { status: waiting[waiting.length - 1].status, state: "done" });
  }

  async function loadStops() {
    try {
      const response = await fetch(setup.urls.stops, { credentials: "same-origin", cache: "no-store",
                                                      headers: { "Accept": "application/json" } });
      if (response.status === 401) { showSignedOut(); }
      if (!response.ok) { throw new Error("stops: " + response.status); }
      state.answer = await response.json();
      state.savedAt = new Date().toISOString();
      state.fromPhone = false;
      showOnline(true);
      await store.saveStops(courier, state.answer);
    } catch (error) {
      if (error instanceof TypeError) { showOnline(false); }
      if (!state.answer) { await loadKeptStops(); }
      state.fromPhone = state.answer !== null;
    }
    state.loading = false;
    render();
  }

  async function loadKeptStops() {
    const kept = await store.loadStops(courier);
    if (kept) {
      state.answer = kept.answer;
      state.savedAt = kept.saved_at;
      state.fromPhone = true;
    }
  }

  const list = find("[data-stops]");
  const stopTemplate = find("[data-stop-template]");

  function render() {
    const shown = stops().map(asOnPhone); /* the server's order: open stops by day and sequence, then done ones */
    const existing = {};
    Array.prototype.forEach.call(list.children, function (item) { existing[item.dataset.trackingId] = item; });
    shown.forEach(function (stop) {
      const item = existing[stop.tracking_id] || stopTemplate.content.firstElementChild.cloneNode(true);
      delete existing[stop.tracking_id];
      fillStop(item, stop);
      list.appendChild(item);
    });
    Object.keys(existing).forEach(function (id) { list.removeChild(existing[id]); });
    renderSummary(shown);
  }

  function renderSummary(shown) {
    const done = shown.filter(function (stop) { return stop.state !== "open"; }).length;
    setText(root, "[data-day-summary]", state.answer && state.answer.date
      ? say("day_summary", { date: day(state.answer.date), done: done, total: shown.length }) : "");
    let line = state.loading ? find("[data-stops-state]").textContent : say("stops_failed");
    if (state.answer) {
      line = state.fromPhone ? say("stops_offline", { time: clock(state.savedAt) })
        : say("stops_updated", { time: clock(state.savedAt) });
      if (!shown.length) { line = say("stops_none") + " " + line; }
    }
    find("[data-stops-state]").textContent = line;
    const waiting = state.actions.filter(function (action) { return action.state === "waiting"; }).length;
    find("[data-queue-summary]").textContent = waiting === 0 ? say("queue_none")
      : waiting === 1 ? say("queue_one") : say("queue_many", { count: waiting });
    find("[data-send-now]").hidden = waiting === 0;
  }

  function fillStop(item, stop) {
    const open = stop.state === "open";
    const pickup = stop.kind === "pickup";
    const visit = whereTo(stop);
    const place = [visit.address, visit.pincode].filter(Boolean).join(", ");
    item.id = "stop-" + stop.tracking_id;
    item.dataset.trackingId = stop.tracking_id;
    item.classList.toggle("stop--done", !open);
    setText(item, "[data-stop-sequence]", String(stop.sequence));
    setText(item, "[data-stop-id]", stop.tracking_id);
    const badge = setText(item, "[data-stop-status]", statusLabel(stop.status));
    badge.className = "badge badge-" + slug(stop.status);
    setText(item, "[data-stop-kind]", pickup ? say("kind_pickup") : say("kind_delivery"));
    setText(item, "[data-stop-name]", visit.name);
    setText(item, "[data-stop-address]", place);
    setText(item, "[data-stop-meta]", [stop.pieces > 1 ? say("pieces_many", { count: stop.pieces }) : say("pieces_one"),
      stop.date && state.answer.date && stop.date < state.answer.date ? say("carried_over", { date: day(stop.date) }) : ""]
      .filter(Boolean).join(" · "));
    setText(item, "[data-stop-money]", stop.payment === "cod" && stop.cod_amount
      ? say("collect", { amount: rupees(stop.cod_amount) }) : say("prepaid"));
    setText(item, "[data-stop-note]", stop.instructions);
    const call = find("[data-stop-call]", item);
    call.hidden = !visit.mobile;
    call.href = "tel:" + String(visit.mobile || "").replace(/[^\d+]/g, "");
    call.setAttribute("aria-label", say("call", { name: visit.name || stop.tracking_id }));
    const navigate = find("[data-stop-navigate]", item);
    navigate.hidden = !place;
    navigate.href = "geo:0,0?q=" + encodeURIComponent(place);
    navigate.setAttribute("aria-label", say("navigate", { place: place }));
    find("[data-stop-actions]", item).hidden = !open;
    Array.prototype.forEach.call(item.querySelectorAll("[data-action]"), function (button) {
      const kind = button.dataset.action;
      button.hidden = pickup ? kind !== "picked_up" : kind === "picked_up";
      button.setAttribute("aria-label", say("action_for", { action: say("action_" + kind), id: stop.tracking_id }));
    });
    fillQueue(find("[data-stop-queue]", item), actionsOf(stop.tracking_id));
  }

  /* Where the courier goes: the sender's for a pickup, the receiver's for a delivery (`visit`). */
  function whereTo(stop) {
    return stop.visit || { name: stop.receiver_name, mobile: stop.mobile, address: stop.destination,
                           pincode: stop.destination_pincode };
  }

  function fillQueue(queue, actions) {
    queue.textContent = "";
    queue.hidden = !actions.length;
    actions.forEach(function (action) {
      const line = document.createElement("li");
      const what = { action: say("action_" + action.kind), time: clock(action.at) };
      line.className = "queued queued--" + action.state;
      line.textContent = action.state === "refused"
        ? say("refused", Object.assign(what, { error: action.error })) : say("waiting", what);
      if (action.state === "refused") {
        const dismiss = document.createElement("button");
        dismiss.type = "button";
        dismiss.className = "button button--small";
        dismiss.textContent = say("dismiss");
        dismiss.dataset.dismiss = action.id;
        line.appendChild(document.createTextNode(" "));
        line.appendChild(dismiss);
      }
      queue.appendChild(line);
    });
  }

  list.addEventListener("click", function (event) {
    const button = event.target.closest("button");
    if (!button) { return; }
    const item = button.closest("[data-stop]");
    if (button.dataset.dismiss) {
      dismiss(button.dataset.dismiss, item);
    } else if (button.dataset.action) {
      const stop = stops().find(function (s) { return s.tracking_id === item.dataset.trackingId; });
      if (stop) { openSheet(stop, button.dataset.action, button); }
    }
  });

  async function dismiss(id, item) {
    state.actions = state.actions.filter(function (action) { return action.id !== id; });
    await store.deleteActions([id]);
    render();
    item.focus();
  }

  /* --- the action sheet: Delivered, Not delivered, Picked up ------------------------------------------------ */

  const dialog = find("[data-sheet]");
  const form = find("[data-sheet-form]");
  const problemsBox = find("[data-sheet-problems]");
  const photoInput = find("[data-photo-input]");
  const photoPreview = find("[data-photo-preview]");
  const signatureInput = find("[data-signature-input]");
  const sheet = { stop: null, kind: null, opener: null, photo: null, confirmed: false };

  function proofLevel(name) {
    const proof = sheet.stop.proof || {};
    return proof[name] || setup.proof_defaults[name];
  }

  function openSheet(stop, kind, opener) {
    Object.assign(sheet, { stop: stop, kind: kind, opener: opener, photo: null, confirmed: false });
    form.reset();
    clearProblems();
    find("[data-signature-clear]").click();
    signatureInput.value = "";
    photoPreview.hidden = true;
    photoPreview.removeAttribute("src");
    find("[data-sheet-title]").textContent = say("action_for", { action: say("action_" + kind), id: stop.tracking_id });
    const visit = whereTo(stop);
    find("[data-sheet-who]").textContent = [visit.name, visit.address].filter(Boolean).join(" · ");
    Array.prototype.forEach.call(form.querySelectorAll("[data-sheet-part]"), function (part) {
      part.hidden = part.dataset.sheetPart !== kind;
    });
    Array.prototype.forEach.call(form.querySelectorAll("[data-proof]"), function (field) {
      field.hidden = proofLevel(field.dataset.proof) === "off";
    });
    const cod = stop.payment === "cod";
    find("[data-cod]").hidden = !cod;
    if (cod) {
      form.elements.cod_collected.value = stop.cod_amount || "";
      find("[data-cod-due]").textContent = say("cod_due", { amount: rupees(stop.cod_amount || 0) });
    }
    showUpi();
    find("[data-otp]").hidden = !stop.otp_required;
    dialog.showModal();
  }

  function showUpi() {
    find("[data-upi]").hidden = form.elements.method.value !== "upi";
  }

  function closeSheet() {
    dialog.close();
  }

  dialog.addEventListener("close", function () {
    const opener = sheet.opener;
    sheet.stop = null;
    if (opener && document.contains(opener)) { opener.focus(); }
  });
  find("[data-sheet-cancel]").addEventListener("click", closeSheet);
  form.addEventListener("change", function (event) {
    if (event.target.name === "method") { showUpi(); }
  });

  photoInput.addEventListener("change", async function () {
    const file = photoInput.files && photoInput.files[0];
    sheet.photo = null;
    photoPreview.hidden = true;
    if (!file) { return; }
    try {
      sheet.photo = await downscale(file);
      photoPreview.src = sheet.photo;
      photoPreview.hidden = false;
    } catch (error) {
      showProblems([say("photo_failed")], photoInput);
    }
  });

  /* A phone's photo is several MB: drawn again at most 1280 px on its longer side, as a JPEG (quality 0.7). */
  async function downscale(file) {
    const image = window.createImageBitmap ? await window.createImageBitmap(file) : await imageOf(file);
    const scale = Math.min(1, PHOTO_LONGER_SIDE / Math.max(image.width, image.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(image.width * scale));
    canvas.height = Math.max(1, Math.round(image.height * scale));
    canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", PHOTO_QUALITY);
  }

  function imageOf(file) {
    return new Promise(function (resolve, reject) {
      const reader = new FileReader();
      reader.onload = function () {
        const image = new Image();
        image.onload = function () { resolve(image); };
        image.onerror = reject;
        image.src = reader.result;
      };
      reader.onerror = reject;
      reader.readAsDataURL(file);
    });
  }

  function value(name) {
    const field = form.elements[name];
    return field && field.value ? field.value.trim() : "";
  }

  /* "1250" → "1250.00": amounts stay decimal strings, never floats. */
  function amount(text) {
    const match = /^(\d{1,7})(?:[.,](\d{1,2}))?$/.exec(text);
    return match ? match[1] + "." + ((match[2] || "") + "00").slice(0, 2) : null;
  }

  /* The action as it is kept and sent, with what the sheet says; `problems` and `warnings` say what is missing. */
  function readSheet() {
    const stop = sheet.stop;
    const action = { id: newId(), courier: courier, kind: sheet.kind, state: "waiting",
                     tracking_id: stop.tracking_id, status: STATUS_OF[sheet.kind], at: new Date().toISOString() };
    const problems = [];
    const warnings = [];
    if (sheet.kind === "attempted") {
      action.attempt_reason = value("attempt_reason");
      if (!action.attempt_reason) { problems.push(["need_reason", form.querySelector("[name=attempt_reason]")]); }
    } else if (sheet.kind === "delivered") {
      const proofs = { received_by: value("received_by"), signature: signatureInput.value, photo: sheet.photo };
      Object.keys(proofs).forEach(function (name) {
        const level = proofLevel(name);
        if (level === "off") { return; }
        if (proofs[name]) {
          action[name] = proofs[name];
        } else if (level === "required") {
          problems.push(["need_" + name, form.querySelector("[data-proof=" + name + "] input, [data-proof=" + name + "] canvas")]);
        } else {
          warnings.push("warn_" + name);
        }
      });
      readCod(action, problems);
      if (stop.otp_required) {
        action.otp = value("otp");
        if (!new RegExp("^\\d{" + setup.otp_digits + "}$").test(action.otp)) {
          problems.push(["need_otp", form.elements.otp]);
        }
      }
    }
    return { action: action, problems: problems, warnings: warnings };
  }

  function readCod(action, problems) {
    if (sheet.stop.payment !== "cod") { return; }
    action.cod_collected = amount(value("cod_collected"));
    action.method = value("method");
    if (action.cod_collected === null) { problems.push(["need_amount", form.elements.cod_collected]); }
    if (action.method === "upi") {
      action.upi_reference = value("upi_reference");
      if (!action.upi_reference) { problems.push(["need_upi_reference", form.elements.upi_reference]); }
    }
  }

  function clearProblems() {
    problemsBox.hidden = true;
    problemsBox.textContent = "";
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (field) {
      field.removeAttribute("aria-invalid");
    });
  }

  function showProblems(messages, first) {
    clearProblems();
    const items = document.createElement("ul");
    messages.forEach(function (message) {
      const item = document.createElement("li");
      item.textContent = message;
      items.appendChild(item);
    });
    problemsBox.appendChild(items);
    problemsBox.hidden = false;
    if (first) {
      first.setAttribute("aria-invalid", "true");
      if (first.focus) { first.focus(); }
    }
  }

  /* "Continue without a signature?": the courier may go on without a proof the admin set to warn. */
  function askToContinue(warnings) {
    clearProblems();
    warnings.forEach(function (key) {
      const line = document.createElement("p");
      line.textContent = say(key);
      problemsBox.appendChild(line);
    });
    const buttons = document.createElement("div");
    buttons.className = "sheet__confirm";
    const go = document.createElement("button");
    go.type = "button";
    go.className = "button button--primary";
    go.textContent = say("continue_without");
    go.addEventListener("click", function () {
      sheet.confirmed = true;
      form.requestSubmit();
    });
    const back = document.createElement("button");
    back.type = "button";
    back.className = "button";
    back.textContent = say("go_back");
    back.addEventListener("click", clearProblems);
    buttons.appendChild(go);
    buttons.appendChild(back);
    problemsBox.appendChild(buttons);
    problemsBox.hidden = false;
    go.focus();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const read = readSheet();
    if (read.problems.length) {
      showProblems(read.problems.map(function (problem) {
        return say(problem[0], { digits: setup.otp_digits });
      }), read.problems[0][1]);
      return;
    }
    if (read.warnings.length && !sheet.confirmed) {
      askToContinue(read.warnings);
      return;
    }
    keep(read.action);
    closeSheet();
  });

  /* --- the queue: kept first, sent when possible ------------------------------------------------------------ */

  const announcer = find("[data-find-answer]");

  async function keep(action) {
    state.actions.push(action);
    render();
    announcer.textContent = say("saved", { action: say("action_" + action.kind), id: action.tracking_id });
    await store.putAction(action);
    send();
  }

  const LOCAL_FIELDS = ["courier", "kind", "state", "error", "fields"];

  function onTheWire(action) {
    const event = {};
    Object.keys(action).forEach(function (key) {
      if (LOCAL_FIELDS.indexOf(key) < 0) { event[key] = action[key]; }
    });
    return event;
  }

  /* The oldest waiting actions that fit one request. */
  function nextBatch() {
    const batch = [];
    let bytes = 0;
    state.actions.some(function (action) {
      if (action.state !== "waiting") { return false; }
      const size = JSON.stringify(onTheWire(action)).length;
      if (batch.length && (batch.length >= setup.events_per_request || bytes + size > state.bytesPerRequest)) {
        return true;
      }
      batch.push(action);
      bytes += size;
      return false;
    });
    return batch;
  }

  let sending = null;
  let sendAgain = false;

  /* One sender at a time; an action saved while it runs (after it read the queue) makes it go round again, so
     nothing saved waits for the next timer. */
  function send() {
    if (sending) {
      sendAgain = true;
      return sending;
    }
    sending = (async function () {
      let changed = false;
      do {
        sendAgain = false;
        changed = (await sendWaiting()) || changed;
      } while (sendAgain && !state.signedOut);
      return changed;
    })().finally(function () { sending = null; });
    return sending;
  }

  async function sendWaiting() {
    let changed = false;
    let batch = nextBatch();
    while (batch.length && !state.signedOut) {
      const outcome = await post(batch);
      if (outcome === "later") { break; }
      changed = changed || outcome === "answered";
      batch = nextBatch();
    }
    render();
    if (changed) { await loadStops(); }
    return changed;
  }

  /* Send what waits, then make sure the list is fresh (sending fetched it again if anything was taken). */
  function sendAndRefresh() {
    return send().then(function (changed) { return changed ? null : loadStops(); });
  }

  /* One request: "answered" (each action applied, duplicate or refused), "smaller" (too large: the next batch
     is smaller) or "later" (no connection, the server's trouble, or no session: nothing changes). */
  async function post(batch, tokenRefreshed) {
    let response;
    try {
      response = await sendJson(setup.urls.events, { events: batch.map(onTheWire) });
    } catch (error) {
      showOnline(false);
      return "later";
    }
    showOnline(true);
    if (response.status === 401) {
      showSignedOut();
      return "later";
    }
    const answer = await response.json().catch(function () { return {}; });
    /* 422: one action refused for the delivery code; its result says so like any other. */
    if ((response.status === 200 || response.status === 422) && Array.isArray(answer.results)) {
      return await settle(answer.results) ? "answered" : "later";
    }
    if (response.status === 400 && !answer.fields && !tokenRefreshed && await refreshToken()) {
      return post(batch, true);
    }
    if (response.status === 413 && batch.length > 1) {
      state.bytesPerRequest = Math.max(1, Math.floor(state.bytesPerRequest / 2));
      return "smaller";
    }
    if ([400, 413, 422].indexOf(response.status) >= 0) { /* the request itself: it would never be taken */
      await settle(batch.map(function (action) {
        return { id: action.id, outcome: "refused", message: answer.error || String(response.status),
                 fields: answer.fields };
      }));
      return "answered";
    }
    return "later";
  }

  /* The server's answer per action: what it has is forgotten (and the stop shown done until the stops are
     fetched again); what it refused stays, with the reason. */
  async function settle(results) {
    const done = [];
    let refused = 0;
    for (const result of results) {
      const action = state.actions.find(function (a) { return a.id === result.id; });
      if (!action) { continue; }
      if (result.outcome === "applied" || result.outcome === "duplicate") {
        done.push(action.id);
        markStop(action);
      } else if (result.outcome === "refused") {
        /* Said in the page's language where the reason's code is known, else as the server said it. */
        Object.assign(action, { state: "refused", fields: result.fields || null,
                                error: setup.words["error_" + result.error] || result.message || result.error });
        await store.putAction(action);
        refused += 1;
      } /* retry: the server was busy with that parcel; it stays waiting and goes again later */
    }
    state.actions = state.actions.filter(function (action) { return done.indexOf(action.id) < 0; });
    await store.deleteActions(done);
    if (done.length && state.answer) { await store.saveStops(courier, state.answer); }
    return done.length + refused;
  }

  function markStop(action) {
    const stop = stops().find(function (s) { return s.tracking_id === action.tracking_id; });
    if (stop) { Object.assign(stop, { status: action.status, state: "done" }); }
  }

  find("[data-send-now]").addEventListener("click", send);

  /* --- scan or type a tracking ID --------------------------------------------------------------------------- */

  const findForm = find("[data-find]");
  const findInput = find("[data-find-input]");

  /* A label's QR code holds the tracking page's URL; its barcode, the ID. */
  function trackingIdIn(text) {
    const inUrl = /\/track\/([^/?#\s]+)/i.exec(text);
    return (inUrl ? decodeURIComponent(inUrl[1]) : text).trim().toUpperCase();
  }

  function goTo(text) {
    const id = trackingIdIn(text);
    if (!id) {
      announcer.textContent = say("type_an_id");
      findInput.focus();
      return;
    }
    const stop = stops().map(asOnPhone).find(function (s) { return s.tracking_id.toUpperCase() === id; });
    if (!stop) {
      announcer.textContent = say("not_found", { id: id });
      return;
    }
    const item = document.getElementById("stop-" + stop.tracking_id);
    announcer.textContent = stop.state === "open" ? say("found", { sequence: stop.sequence, id: stop.tracking_id })
      : say("found_done", { sequence: stop.sequence, id: stop.tracking_id, status: statusLabel(stop.status) });
    Array.prototype.forEach.call(list.querySelectorAll(".stop--found"), function (other) {
      other.classList.remove("stop--found");
    });
    item.classList.add("stop--found");
    item.scrollIntoView({ block: "start" });
    item.focus({ preventScroll: true });
  }

  findForm.addEventListener("submit", function (event) {
    event.preventDefault();
    goTo(findInput.value);
    findInput.value = "";
  });

  function setUpCamera() {
    const reader = window.WaybillCameraReader;
    const fallback = { script: setup.urls.barcode_reader, wasm: setup.urls.barcode_wasm };
    const box = find("[data-camera]");
    if (!reader || !reader.available(fallback)) {
      box.hidden = true;
      return;
    }
    const toggle = find("[data-camera-toggle]");
    const camera = reader.create(find("[data-camera-video]"), function (code) {
      stopCamera();
      goTo(code);
    }, fallback);
    box.removeAttribute("data-pending");

    function stopCamera() {
      camera.stop();
      toggle.textContent = toggle.dataset.textStart;
    }

    toggle.addEventListener("click", function () {
      if (camera.running()) {
        stopCamera();
        return;
      }
      announcer.textContent = say("camera_aim");
      camera.start().then(function () {
        toggle.textContent = toggle.dataset.textStop;
      }, function () {
        toggle.textContent = toggle.dataset.textStart;
        announcer.textContent = say("camera_failed");
      });
    });
    document.addEventListener("visibilitychange", function () {
      if (document.hidden && camera.running()) { stopCamera(); }
    });
  }

  /* --- position, while the app is open and the courier on shift --------------------------------------------- */

  const positions = setup.positions;
  const locationState = find("[data-location-state]");
  const tracker = { watch: null, lastAt: 0, fresh: [], sending: false, battery: null };

  function localTime() {
    return new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23",
                                              timeZone: setup.timezone }).format(new Date());
  }

  /* The same rule as the server's (app.domain.field.on_shift): a shift that ends before it starts runs past
     midnight. */
  function onShift() {
    const shift = setup.shift;
    if (!shift) { return false; }
    const now = localTime();
    return shift.start <= shift.end ? shift.start <= now && now < shift.end : now >= shift.start || now < shift.end;
  }

  function stopWatching() {
    if (tracker.watch !== null) { navigator.geolocation.clearWatch(tracker.watch); }
    tracker.watch = null;
  }

  function followShift() {
    if (!navigator.geolocation) {
      locationState.textContent = say("location_unavailable");
    } else if (!onShift() || state.signedOut) {
      stopWatching();
      locationState.textContent = say("location_off_shift");
    } else if (document.hidden) {
      stopWatching();
    } else if (tracker.watch === null) {
      tracker.watch = navigator.geolocation.watchPosition(onPosition, onPositionError,
                                                           { enableHighAccuracy: true, maximumAge: 0 });
    }
  }

  function onPosition(position) {
    const coords = position.coords;
    locationState.textContent = say("location_on");
    /* The server drops these too (app.domain.field): no need to send them. */
    if (coords.accuracy > positions.worst_accuracy_m
        || position.timestamp - tracker.lastAt < positions.min_gap_seconds * 1000) { return; }
    tracker.lastAt = position.timestamp;
    const point = { lat: coords.latitude, lon: coords.longitude, accuracy: coords.accuracy,
                    at: new Date(position.timestamp).toISOString() };
    if (Number.isFinite(coords.speed)) { point.speed = coords.speed; }
    if (Number.isFinite(coords.heading)) { point.heading = coords.heading; }
    if (tracker.battery) { point.battery = tracker.battery.level; } /* a fraction from 0 to 1 */
    tracker.fresh.push(point);
    if (tracker.fresh.length >= positions.send_every) { sendPoints(); }
  }

  function onPositionError(error) {
    if (error.code === error.PERMISSION_DENIED) {
      stopWatching();
      locationState.textContent = say("location_denied");
    }
  }

  /* Positions wait on the phone (the newest `kept_offline`) and go in batches of at most `per_request`. */
  async function sendPoints() {
    if (tracker.sending || state.signedOut) { return; }
    tracker.sending = true;
    try {
      if (tracker.fresh.length) { await store.addPoints(courier, tracker.fresh.splice(0), positions.kept_offline); }
      let rows = await store.takePoints(courier, positions.per_request);
      while (rows.length) {
        const response = await sendJson(setup.urls.locations, { points: rows.map(function (row) { return row.point; }) });
        if (response.status === 401) { showSignedOut(); }
        /* 400: values the server will never take; sending them again would block the rest. */
        if (response.status !== 202 && response.status !== 400) { break; }
        await store.deletePoints(rows.map(function (row) { return row.seq; }));
        rows = rows.length < positions.per_request ? [] : await store.takePoints(courier, positions.per_request);
      }
    } catch (error) {
      /* offline: the positions wait on the phone */
    } finally {
      tracker.sending = false;
    }
  }

  function setUpLocation() {
    if (navigator.getBattery) {
      navigator.getBattery().then(function (battery) { tracker.battery = battery; }, function () {});
    }
    followShift();
    window.setInterval(function () {
      followShift();
      sendPoints();
    }, positions.send_seconds * 1000);
  }

  /* --- signing out: the page and the stops kept on this phone go with the session --------------------------- */

  function setUpSignOut() {
    Array.prototype.forEach.call(document.querySelectorAll("form"), function (signOut) {
      if (new URL(signOut.action, window.location.href).pathname !== setup.urls.sign_out) { return; }
      signOut.addEventListener("submit", function (event) {
        event.preventDefault();
        if (navigator.serviceWorker && navigator.serviceWorker.controller) {
          navigator.serviceWorker.controller.postMessage("forget-page");
        }
        const pause = new Promise(function (resolve) { window.setTimeout(resolve, 1500); });
        Promise.race([store.forgetStops(courier), pause]).catch(function () {}).then(function () { signOut.submit(); });
      });
    });
  }

  /* --- start ------------------------------------------------------------------------------------------------ */

  async function start() {
    if (navigator.serviceWorker) {
      navigator.serviceWorker.register(setup.urls.service_worker, { scope: setup.urls.page })
        .catch(function () { /* no offline start on this browser: the app still works online */ });
    }
    showOnline(navigator.onLine);
    state.actions = await store.actions(courier);
    await loadKeptStops();
    render();
    await store.forgetStopsExcept(courier);
    await loadStops();
    send();
    window.addEventListener("online", function () {
      showOnline(true);
      sendAndRefresh();
      sendPoints();
    });
    window.addEventListener("offline", function () { showOnline(false); });
    document.addEventListener("visibilitychange", function () {
      followShift();
      if (!document.hidden) { /* back in the app: what waits goes, and the list may have grown meanwhile */
        sendAndRefresh();
        sendPoints();
      }
    });
    window.setInterval(send, SEND_EVERY_MS);
    setUpCamera();
    setUpLocation();
    setUpSignOut();
  }

  start();
}());
