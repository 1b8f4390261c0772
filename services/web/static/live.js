// Live pages: when the server says one of this person's conversations
// changed, the part of the page marked data-live is fetched again and
// swapped in, with the parts marked data-live-part (the panel of who is
// handling a conversation). What was typed in a form outside them is kept. Without
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
      .then(function (r) {
        if (r.ok) { return r.text(); }
        // No longer theirs to see (a carer whose consent ended): the page
        // says so at once, in place of what it showed, and stops watching.
        if (r.status === 403) { return r.text().then(ended); }
        return null;
      })
      .then(function (html) {
        if (!html) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("[data-live]");
        var now = document.querySelector("[data-live]");
        if (fresh && now) {
          now.replaceWith(fresh);
          // The title counts what is unread: a tab behind others shows it.
          if (doc.title) { document.title = doc.title; }
          // Other parts that follow the same changes (who is handling a
          // conversation), by id, unless the person is using one of them.
          doc.querySelectorAll("[data-live-part][id]").forEach(function (part) {
            var here = document.getElementById(part.id);
            if (here && !here.contains(document.activeElement)) { here.replaceWith(part); }
          });
          // The fetch was activity: the session's idle end moved on.
          document.dispatchEvent(new Event("careline:refreshed"));
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { var a = again; again = 0; refresh(a); }
      });
  }

  function ended(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var said = doc.getElementById("main");
    var here = document.getElementById("main");
    if (said && here) {
      here.replaceWith(said);
      source.close();
    }
    return null;
  }

  var source = new EventSource("/live");
  var opened = false;
  source.addEventListener("open", function () {
    // A reconnection may have missed a change: read the page again.
    if (opened) { refresh(0); }
    opened = true;
  });
  // Presence (staff): "Ned Brown is replying", told while they type; and
  // this page says so while its person types, every few seconds.
  var presence = document.getElementById("presence");
  if (presence) {
    var hide = 0;
    source.addEventListener("presence", function (e) {
      var p = JSON.parse(e.data);
      if (p.thread !== watching || !p.names.length) { return; }
      presence.textContent = p.names.join(", ") + (p.names.length > 1 ? " are replying" : " is replying");
      presence.hidden = false;
      clearTimeout(hide);
      hide = setTimeout(function () { presence.hidden = true; presence.textContent = ""; }, 8000);
    });
    var box = document.getElementById("body");
    var form = box && box.form;
    var last = 0;
    if (form) {
      box.addEventListener("input", function () {
        // A staff note is not a reply: nobody is told of it.
        var kind = form.querySelector("input[name=kind]:checked, input[name=kind][type=hidden]");
        if (kind && kind.value === "note") { return; }
        var now = Date.now();
        if (now - last < 2500) { return; }
        last = now;
        var data = new URLSearchParams();
        data.set("csrf", form.querySelector("input[name=csrf]").value);
        fetch("/threads/" + watching + "/typing", { method: "POST", body: data, credentials: "same-origin" })
          .catch(function () {});
      });
    }
  }

  source.addEventListener("change", function (e) {
    var change = JSON.parse(e.data);
    if (watching === "list" || change.threads.indexOf(watching) >= 0) {
      refresh(change.position);
    }
  });
})();
