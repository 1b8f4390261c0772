// Live pages: when the server says one of this person's conversations
// changed, the part of the page marked data-live is fetched again and
// swapped in. What was typed in a form outside it is kept. Without
// JavaScript the pages work the same, with a reload.
(function () {
  "use strict";
  var region = document.querySelector("[data-live]");
  if (!region || !window.EventSource || !window.fetch) {
    return;
  }
  var watching = region.getAttribute("data-live");
  var busy = false;
  var again = 0;

  function refresh(at) {
    if (busy) {
      again = Math.max(again, at || 1);
      return;
    }
    busy = true;
    var url = location.pathname + location.search;
    url += (url.indexOf("?") < 0 ? "?" : "&") + "at=" + (at || 0);
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("[data-live]");
        var now = document.querySelector("[data-live]");
        if (fresh && now) { now.replaceWith(fresh); }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { var a = again; again = 0; refresh(a); }
      });
  }

  var source = new EventSource("/live");
  var opened = false;
  source.addEventListener("open", function () {
    // A reconnection may have missed a change: read the page again.
    if (opened) { refresh(0); }
    opened = true;
  });
  source.addEventListener("change", function (e) {
    var change = JSON.parse(e.data);
    if (watching === "list" || change.threads.indexOf(watching) >= 0) {
      refresh(change.position);
    }
  });
})();
