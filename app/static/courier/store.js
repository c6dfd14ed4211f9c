/* The courier app's memory on the phone (IndexedDB), so that nothing done offline is lost when the page or the
   phone restarts. Everything is kept per courier: a phone shared by two couriers never sends one's actions
   with the other's session.
   - actions: what the courier did, by its client id (a UUID), with the time it happened: waiting until the
     server has it (applied or duplicate), or refused (kept, with the reason, until the courier dismisses it).
   - stops: the day's stops as GET /courier/stops last answered.
   - points: positions not yet sent, at most `kept_offline` of them (the oldest go first).
   window.WaybillCourierStore gives promise-returning functions over them. */
(function () {
  "use strict";

  var NAME = "waybill-courier";
  var VERSION = 1;
  var opened = null;

  function request(idbRequest) {
    return new Promise(function (resolve, reject) {
      idbRequest.onsuccess = function () { resolve(idbRequest.result); };
      idbRequest.onerror = function () { reject(idbRequest.error); };
    });
  }

  function open() {
    if (!opened) {
      opened = new Promise(function (resolve, reject) {
        var asked = window.indexedDB.open(NAME, VERSION);
        asked.onupgradeneeded = function () {
          var db = asked.result;
          db.createObjectStore("actions", { keyPath: "id" }).createIndex("courier", "courier");
          db.createObjectStore("stops", { keyPath: "courier" });
          db.createObjectStore("points", { keyPath: "seq", autoIncrement: true }).createIndex("courier", "courier");
        };
        asked.onsuccess = function () { resolve(asked.result); };
        asked.onerror = function () { reject(asked.error); };
      });
    }
    return opened;
  }

  /* Run `work(store)` in one transaction; resolves with work's result once the transaction has committed. */
  function inStore(name, mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var transaction = db.transaction(name, mode);
        var result;
        Promise.resolve(work(transaction.objectStore(name))).then(function (value) { result = value; }, reject);
        transaction.oncomplete = function () { resolve(result); };
        transaction.onerror = function () { reject(transaction.error); };
        transaction.onabort = function () { reject(transaction.error); };
      });
    });
  }

  function byCourier(name, courier) {
    return inStore(name, "readonly", function (store) {
      return request(store.index("courier").getAll(courier));
    });
  }

  function actions(courier) {
    return byCourier("actions", courier).then(function (found) {
      return found.sort(function (a, b) { return a.at < b.at ? -1 : a.at > b.at ? 1 : 0; });
    });
  }

  function putAction(action) {
    return inStore("actions", "readwrite", function (store) { return request(store.put(action)); });
  }

  function deleteActions(ids) {
    return inStore("actions", "readwrite", function (store) {
      ids.forEach(function (id) { store.delete(id); });
    });
  }

  function saveStops(courier, answer) {
    return inStore("stops", "readwrite", function (store) {
      return request(store.put({ courier: courier, answer: answer, saved_at: new Date().toISOString() }));
    });
  }

  function loadStops(courier) {
    return inStore("stops", "readonly", function (store) { return request(store.get(courier)); });
  }

  /* Another courier's list has no business on this phone once this courier signs in. */
  function forgetStopsExcept(courier) {
    return inStore("stops", "readwrite", function (store) {
      return request(store.getAllKeys()).then(function (keys) {
        keys.filter(function (key) { return key !== courier; }).forEach(function (key) { store.delete(key); });
      });
    });
  }

  function forgetStops(courier) {
    return inStore("stops", "readwrite", function (store) { return request(store.delete(courier)); });
  }

  /* Add positions; beyond `keep` for this courier, the oldest are dropped. */
  function addPoints(courier, points, keep) {
    return inStore("points", "readwrite", function (store) {
      points.forEach(function (point) { store.add({ courier: courier, point: point }); });
      return request(store.index("courier").getAllKeys(courier)).then(function (keys) {
        keys.sort(function (a, b) { return a - b; }).slice(0, Math.max(0, keys.length - keep))
          .forEach(function (key) { store.delete(key); });
      });
    });
  }

  /* The oldest `count` positions: [{seq, point}]. */
  function takePoints(courier, count) {
    return byCourier("points", courier).then(function (rows) {
      return rows.sort(function (a, b) { return a.seq - b.seq; }).slice(0, count);
    });
  }

  function deletePoints(seqs) {
    return inStore("points", "readwrite", function (store) {
      seqs.forEach(function (seq) { store.delete(seq); });
    });
  }

  window.WaybillCourierStore = {
    available: function () { return Boolean(window.indexedDB); },
    actions: actions, putAction: putAction, deleteActions: deleteActions,
    saveStops: saveStops, loadStops: loadStops, forgetStops: forgetStops, forgetStopsExcept: forgetStopsExcept,
    addPoints: addPoints, takePoints: takePoints, deletePoints: deletePoints
  };
}());
