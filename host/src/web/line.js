// The line dashboard: the station streams the latest batch and the line
// readers as Server-Sent Events; this fills the page's cells with text
// (never markup), numbers in the page's language.
(function () {
  "use strict";
  var lang = document.documentElement.getAttribute("lang") || "en";
  var state = document.getElementById("line-state");
  function num(n) {
    return Number(n).toLocaleString(lang === "fa" ? "fa-IR" : "en-US", { useGrouping: false });
  }
  function set(id, text) {
    var el = document.getElementById(id);
    if (el) {
      el.textContent = text;
      el.setAttribute("dir", "auto");
    }
  }
  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    td.setAttribute("dir", "auto");
    row.appendChild(td);
  }
  var source = new EventSource("/line/events");
  source.addEventListener("line", function (e) {
    var s = JSON.parse(e.data);
    state.textContent = state.getAttribute("data-live") + " · " + new Date().toLocaleTimeString(lang === "fa" ? "fa-IR" : "en-GB");
    if (!s.batch) {
      state.textContent = state.getAttribute("data-no-batch");
      return;
    }
    var b = s.batch;
    document.getElementById("line-summary").setAttribute("data-batch", String(b.id));
    set("line-batch", num(b.id) + " · " + b.name);
    set("line-records", num(b.records));
    set("line-pending", num(b.pending));
    set("line-in_progress", num(b.in_progress));
    set("line-good", num(b.good));
    set("line-rejected", num(b.rejected));
    set("line-interrupted", num(b.interrupted));
    var body = document.querySelector("#line-readers tbody");
    while (body.firstChild) {
      body.removeChild(body.firstChild);
    }
    s.readers.forEach(function (r) {
      var row = document.createElement("tr");
      row.setAttribute("data-reader", r.name);
      cell(row, r.name);
      cell(row, r.card_present === null ? "?" : (r.card_present ? "✓" : "—"));
      cell(row, r.busy_with || "—");
      cell(row, r.last ? r.last[0] + " " + r.last[1] : "—");
      cell(row, num(r.attempts));
      body.appendChild(row);
    });
  });
})();
