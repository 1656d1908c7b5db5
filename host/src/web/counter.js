// The counter's pages follow the station: when its state moves on (a card
// inserted or removed, a step done), the page reloads. Nothing is stored in
// the browser; PIN fields are cleared before the page goes away.
(function () {
  "use strict";
  var body = document.body;
  var version = body.getAttribute("data-version");
  if (version === null) {
    return;
  }
  function clearPins() {
    var fields = document.querySelectorAll("input[type=password]");
    for (var i = 0; i < fields.length; i++) {
      fields[i].value = "";
    }
  }
  window.addEventListener("pagehide", clearPins);
  function poll() {
    fetch("/status", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) {
          window.location.assign("/login?note=1");
          return null;
        }
        return r.json();
      })
      .then(function (s) {
        if (s && String(s.v) !== version) {
          clearPins();
          window.location.reload();
        } else {
          window.setTimeout(poll, 400);
        }
      })
      .catch(function () {
        window.setTimeout(poll, 1000);
      });
  }
  window.setTimeout(poll, 400);
})();
