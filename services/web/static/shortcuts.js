// Keyboard shortcuts for staff, listed on the page's help overlay (press
// "?"): in a team inbox j / k move between conversations, Enter opens one,
// "/" finds a patient; on a conversation "a" assigns it to you, "r" goes to
// the reply box, "n" to the staff note, "e" archives, "u" goes back. Never
// while typing in a form. Every shortcut is a link or a button already on
// the page: without JavaScript (or without the keys) the page works the same.
(function () {
  "use strict";
  // A conversation opened from a team inbox has the inbox's list beside it
  // on a wide screen: fetched only there (a phone never reads it), and
  // again whenever the page's live part is (live.js).
  var queue = document.querySelector("aside[data-queue]");
  var wide = window.matchMedia && window.matchMedia("(min-width: 64em)");
  function loadQueue() {
    if (!queue || !window.fetch || !wide || !wide.matches) { return; }
    fetch(queue.getAttribute("data-queue"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var list = new DOMParser().parseFromString(html, "text/html").getElementById("queue-list");
        if (!list || queue.contains(document.activeElement)) { return; }
        queue.replaceChildren(list);
        queue.hidden = false;
        queue.parentNode.classList.add("is-open");
      })
      .catch(function () {});
  }
  if (queue) {
    loadQueue();
    if (wide && wide.addEventListener) { wide.addEventListener("change", loadQueue); }
    document.addEventListener("careline:refreshed", loadQueue);
  }

  var help = document.getElementById("shortcuts");
  if (!help) {
    return;
  }

  function typing(e) {
    var t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-row]"));
  }

  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var at = all.indexOf(document.activeElement);
    var next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
    all[next].focus();
  }

  function press(key) {
    var button = document.querySelector("button[data-key='" + key + "']");
    if (button) { button.click(); return true; }
    return false;
  }

  function focus(id) {
    var el = document.getElementById(id);
    if (el) { el.focus(); el.scrollIntoView({ block: "center" }); return true; }
    return false;
  }

  // The one box, switched to a reply or a note (a professional on the
  // team's side has no switch: a note only, so "r" does nothing there).
  function write(kind) {
    var choice = document.getElementById(kind);
    if (choice) { choice.checked = true; }
    else if (kind === "kind-reply") { return false; }
    return focus("body");
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) {
      return;
    }
    var done = true;
    switch (e.key) {
      case "?":
        if (help.open) { help.close(); } else { help.showModal(); }
        break;
      case "j": move(1); break;
      case "k": move(-1); break;
      case "/": done = focus("q"); break;
      case "a": done = press("a"); break;
      case "e": done = press("e"); break;
      case "r": done = write("kind-reply"); break;
      case "n": done = write("kind-note"); break;
      case "u": location.href = "/teams"; break;
      default: done = false;
    }
    if (done) { e.preventDefault(); }
  });
})();
