// Writing without losing it. What is typed in a message box
// (textarea[data-draft]) is kept in this browser tab (sessionStorage: gone
// when the tab closes, and at sign-out), so an ended session, a refused
// send or a reload loses nothing; it is dropped once the next page shows
// the send went through. Each box counts its characters against its limit.
// Before an idle session ends a notice offers to stay signed in, and typing
// keeps the session alive. Without JavaScript the pages work the same:
// a refused send keeps what was typed on the server's page.
(function () {
  "use strict";
  var store = null;
  try { store = window.sessionStorage; } catch (e) { store = null; }
  var PREFIX = "careline-draft:";
  var body = document.body;
  var signedIn = body.hasAttribute("data-idle");

  function keyOf(box) {
    var form = box.form;
    return PREFIX + (form ? form.getAttribute("action") : location.pathname) + "#" + box.id;
  }

  // The page after a send: sent unless it says what went wrong, or is the
  // sign-in page (the session had ended: the draft waits for the way back).
  if (store) {
    var sent = store.getItem("careline-sent");
    store.removeItem("careline-sent");
    if (sent && signedIn && !document.querySelector(".error, .problem")) {
      store.removeItem(sent);
    }
    var signOut = document.querySelector('form[action="/sign-out"]');
    if (signOut) {
      signOut.addEventListener("submit", function () {
        for (var i = store.length - 1; i >= 0; i--) {
          var k = store.key(i);
          if (k && k.indexOf(PREFIX) === 0) { store.removeItem(k); }
        }
      });
    }
  }

  function thousands(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  var boxes = document.querySelectorAll("textarea[data-draft]");
  Array.prototype.forEach.call(boxes, function (box) {
    var key = keyOf(box);
    var limit = parseInt(box.getAttribute("data-limit"), 10) || 0;
    var count = document.getElementById(box.id + "-count");
    function counted() {
      if (!count || !limit) { return; }
      var used = Array.from(box.value).length;
      if (used > limit) {
        var over = used - limit;
        count.textContent = thousands(over) + (over === 1 ? " character" : " characters") +
          " too many: at most " + thousands(limit) + ".";
        count.classList.add("over");
      } else {
        count.textContent = thousands(used) + " of " + thousands(limit) + " characters.";
        count.classList.remove("over");
      }
    }
    if (store) {
      var kept = store.getItem(key);
      if (kept && !box.value) {
        box.value = kept;
        var note = document.createElement("p");
        note.className = "notice";
        note.setAttribute("role", "status");
        note.textContent = "What you had written is back: it was kept in this browser and has not been sent yet.";
        box.parentNode.insertBefore(note, box.previousElementSibling || box);
      }
      box.addEventListener("input", function () {
        if (box.value) { store.setItem(key, box.value); } else { store.removeItem(key); }
      });
      if (box.form) {
        box.form.addEventListener("submit", function () {
          if (box.value) { store.setItem(key, box.value); }
          store.setItem("careline-sent", key);
        });
      }
    }
    box.addEventListener("input", counted);
    if (box.value) { counted(); }
  });

  // The idle end: a warning two minutes before, and typing keeps it off.
  if (!signedIn || !window.fetch) { return; }
  var idle = parseInt(body.getAttribute("data-idle"), 10) * 1000;
  if (!idle) { return; }
  var warnBefore = Math.min(120000, idle / 4);
  var warning = null;
  var timers = [];
  var lastPing = Date.now();

  function clearTimers() {
    timers.forEach(clearTimeout);
    timers = [];
  }
  function banner(text, button) {
    if (!warning) {
      warning = document.createElement("div");
      warning.className = "notice session-ending";
      warning.setAttribute("role", "alert");
      var main = document.getElementById("main");
      main.insertBefore(warning, main.firstChild);
    }
    warning.textContent = text + " ";
    if (button) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "button secondary";
      b.textContent = button.label;
      b.addEventListener("click", button.click);
      warning.appendChild(b);
    }
  }
  function ended() {
    banner("Your session has ended. Anything you typed is kept in this browser: sign in to send it.", {
      label: "Sign in",
      click: function () { location.href = "/sign-in?ended=1&next=" + encodeURIComponent(location.pathname); }
    });
  }
  function schedule() {
    clearTimers();
    timers.push(setTimeout(function () {
      var minutes = Math.round(warnBefore / 60000);
      var when = minutes < 1 ? "in less than a minute" : minutes === 1 ? "in a minute" : "in " + minutes + " minutes";
      banner("Your session ends " + when + " unless you carry on.", {
        label: "Stay signed in",
        click: alive
      });
    }, idle - warnBefore));
    timers.push(setTimeout(ended, idle));
  }
  function alive() {
    lastPing = Date.now();
    fetch("/session/alive", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 204) {
          if (warning) { warning.remove(); warning = null; }
          schedule();
        } else {
          clearTimers();
          ended();
        }
      })
      .catch(function () { /* offline: the timers stand */ });
  }
  // Typing is activity: tell the server now and then.
  Array.prototype.forEach.call(boxes, function (box) {
    box.addEventListener("input", function () {
      if (Date.now() - lastPing > Math.min(300000, idle / 3)) { alive(); }
    });
  });
  // A live page's refreshes keep the session alive too.
  document.addEventListener("careline:refreshed", function () { lastPing = Date.now(); schedule(); });
  schedule();
})();

// A conversation reached by a link from another site is not marked read by
// that visit: the page asks for it itself, with its form token, once shown.
(function () {
  "use strict";
  var form = document.getElementById("mark-read");
  if (!form || !window.fetch) { return; }
  form.hidden = true;
  fetch(form.getAttribute("action"), {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(new FormData(form)),
    redirect: "manual"
  }).catch(function () { form.hidden = false; });
})();

// Sending files shows how far it has got: a message with files goes by
// XMLHttpRequest, whose upload reports its progress, under the file box;
// the page the server answers is then shown as if the form had been sent
// (the conversation, or what to fix with what was typed kept). Without
// JavaScript the form is sent as it is, without the bar.
(function () {
  "use strict";
  if (!window.XMLHttpRequest || !window.FormData) { return; }
  function megabytes(n) {
    return n < 1048576 ? Math.max(1, Math.round(n / 1024)) + " KB" : (n / 1048576).toFixed(1) + " MB";
  }
  var inputs = document.querySelectorAll('form input[type="file"][name="files"]');
  Array.prototype.forEach.call(inputs, function (input) {
    var form = input.form;
    form.addEventListener("submit", function (event) {
      var total = 0;
      Array.prototype.forEach.call(input.files || [], function (f) { total += f.size; });
      if (!total || event.defaultPrevented) { return; }
      event.preventDefault();
      var data = event.submitter && event.submitter.name
        ? new FormData(form, event.submitter) : new FormData(form);
      var bar = document.createElement("progress");
      bar.className = "careline-progress";
      bar.max = total;
      bar.value = 0;
      bar.setAttribute("aria-label", "Sending the files");
      var said = document.createElement("p");
      said.className = "hint careline-progress-text";
      said.setAttribute("role", "status");
      said.textContent = "Sending " + megabytes(total) + "…";
      input.parentNode.appendChild(bar);
      input.parentNode.appendChild(said);
      var buttons = form.querySelectorAll("button");
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.getAttribute("action"));
      xhr.upload.addEventListener("progress", function (e) {
        var sent = Math.min(e.loaded, total);
        bar.value = sent;
        said.textContent = "Sent " + megabytes(sent) + " of " + megabytes(total) +
          " (" + Math.floor(100 * sent / total) + "%)";
      });
      xhr.upload.addEventListener("load", function () {
        bar.removeAttribute("value");
        said.textContent = "Sent. Checking and storing the files…";
      });
      xhr.addEventListener("load", function () {
        var url = xhr.responseURL || form.getAttribute("action");
        if (xhr.status < 400 && url.indexOf(form.getAttribute("action")) < 0) {
          location.href = url;
          return;
        }
        document.open();
        document.write(xhr.responseText);
        document.close();
        if (url !== location.href) { history.replaceState(null, "", url); }
      });
      xhr.addEventListener("error", function () {
        bar.remove();
        said.textContent = "The files could not be sent: the connection failed. Try again.";
        Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
      });
      xhr.send(data);
    });
  });
})();
