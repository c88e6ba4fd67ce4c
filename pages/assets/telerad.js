// telerad's pages: the few things a server-rendered page cannot do alone.
// - buttons with data-post call the JSON API with the session's CSRF token,
//   then reload a region (data-refresh) or go elsewhere (data-then);
// - regions with data-src reload when the event stream names one of their
//   data-events (and every data-every seconds);
// - countdowns (data-until) and elapsed times (data-since) tick, on the
//   server's clock;
// - j/k and the arrow keys move between rows, c claims, Enter opens;
// - an opt-in sound and desktop notification for a new STAT study.
// No inline script, no eval: the content security policy allows this file.
(function () {
  "use strict";
  var body = document.body;
  var csrf = body.dataset.csrf || "";
  // The server's clock, which may not be the browser's.
  var skew = (Number(body.dataset.now) || Date.now()) - Date.now();
  function now() { return Date.now() + skew; }

  function span(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    var m = Math.floor((s % 3600) / 60);
    return Math.floor(s / 3600) + " h " + (m < 10 ? "0" : "") + m;
  }

  function tick() {
    var t = now();
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var left = Number(el.dataset.until) - t;
      if (el.dataset.window && left <= 0) {
        el.textContent = body.dataset.closed || "";
      } else {
        el.textContent = (left < 0 ? "\u2212" : "") + span(left);
      }
      el.classList.toggle("overdue", left < 0);
    });
    document.querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = span(t - Number(el.dataset.since));
    });
  }

  // Once the page is going (signed out, another page asked for), nothing
  // it still had in flight sends it elsewhere.
  var leaving = false;
  window.addEventListener("beforeunload", function () { leaving = true; });

  function signIn() {
    if (leaving) return;
    leaving = true;
    window.location.href = "/login?expired=1&next=" +
      encodeURIComponent(window.location.pathname + window.location.search);
  }

  function say(text) {
    var box = document.getElementById("flash");
    if (!box) {
      box = document.createElement("p");
      box.id = "flash";
      box.className = "error";
      box.setAttribute("role", "alert");
      document.querySelector("main").prepend(box);
    }
    box.textContent = text;
  }

  // Rows known so far, so that a new STAT one can be announced.
  var known = new Set();
  function remember(region, announce) {
    region.querySelectorAll("[data-uid]").forEach(function (row) {
      var uid = row.dataset.uid;
      if (!known.has(uid)) {
        known.add(uid);
        if (announce) {
          row.classList.add("arrived");
          if (row.dataset.priority === "stat") alertStat(row);
        }
      }
    });
  }

  // One refresh of a region at a time; a change announced meanwhile runs
  // it again once it ends, so that no event is lost.
  var refreshing = {};
  var again = {};
  function refresh(region) {
    if (!region || leaving) return;
    if (refreshing[region.id]) { again[region.id] = true; return; }
    refreshing[region.id] = true;
    again[region.id] = false;
    fetch(region.dataset.src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected && new URL(response.url).pathname === "/login") {
          signIn();
          return null;
        }
        if (!response.ok) throw new Error(response.status);
        return response.text();
      })
      .then(function (html) {
        if (html === null) return;
        var focused = document.activeElement && document.activeElement.dataset
          ? document.activeElement.dataset.uid : null;
        region.innerHTML = html;
        remember(region, true);
        tick();
        if (focused) {
          var row = region.querySelector('[data-uid="' + CSS.escape(focused) + '"]');
          if (row) row.focus();
        }
        body.dataset.refreshed = String(Number(body.dataset.refreshed || 0) + 1);
      })
      .catch(function () { setLive(false); })
      .finally(function () {
        refreshing[region.id] = false;
        if (again[region.id]) refresh(region);
      });
  }

  // The API answers its refusals in the page's language, whatever the
  // browser's own preference (the page is French when it names neither).
  var pageLang = document.documentElement.lang || "fr";
  window.teleradLang = pageLang;

  // A refusal in the page's language, then the API's own words.
  var KINDS = { 400: "Input", 413: "Input", 422: "Input", 403: "Forbidden", 404: "Missing",
    409: "State", 429: "Busy", 503: "Busy" };
  function refusal(status, answer) {
    var d = document.body.dataset;
    var lead = d["failed" + (KINDS[status] || "")] || d.failed || "";
    return lead + " (" + status + ")" + (answer.error ? " : " + answer.error : "");
  }
  // reading.js words its refusals the same way (it runs after this file).
  window.teleradRefusal = refusal;

  function post(button) {
    if (button.disabled) return;
    button.disabled = true;
    fetch(button.dataset.post, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json", "Accept-Language": pageLang }
    }).then(function (response) {
      if (response.status === 401) { signIn(); return; }
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (answer) {
          say(refusal(response.status, answer));
          button.disabled = false;
        });
      }
      if (button.dataset.then) {
        leaving = true;
        window.location.href = button.dataset.then;
        return;
      }
      refresh(document.getElementById(button.dataset.refresh));
    }).catch(function () { button.disabled = false; });
  }

  // Forms sent to the JSON API (data-api): named fields as a JSON object,
  // a data-list field split at commas; the answer's generated password,
  // if any, shown once in the data-result element.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-api], form[data-api-template]");
    if (!form) return;
    event.preventDefault();
    var body = {};
    // A data-path field names the resource ({name} in data-api-template)
    // rather than going in the body.
    var address = form.dataset.api || form.dataset.apiTemplate;
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.dataset.path) {
        address = address.replace("{" + field.name + "}", encodeURIComponent(field.value));
        return;
      }
      if (!field.name || field.value.trim() === "") return;
      var value = field.value.trim();
      var kind = field.dataset.kind;
      if (field.dataset.list) {
        value = value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
      } else if (kind === "number") {
        value = Number(value);
      } else if (kind === "bool") {
        value = value === "true";
      } else if (kind === "datetime") {
        // The browser's local time, sent with its offset (RFC 3339).
        value = new Date(value).toISOString();
      }
      body[field.name] = value;
    });
    var result = document.getElementById(form.dataset.result);
    var submit = form.querySelector("button[type='submit']");
    if (submit && submit.disabled) return;
    if (submit) submit.disabled = true;
    fetch(address, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json", "Accept": "application/json",
        "Accept-Language": pageLang },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (response.status === 401) { signIn(); return null; }
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) {
          say(refusal(response.status, answer));
          return;
        }
        if (form.dataset.then) {
          leaving = true;
          window.location.href = form.dataset.then;
          return;
        }
        var flash = document.getElementById("flash");
        if (flash) flash.remove();
        form.reset();
        if (result) {
          var shown = form.dataset.done || (answer.user ? answer.user.login : answer.name || "");
          var secret = answer.password || answer.token;
          result.textContent = shown + (secret ? " · " + secret : "");
          result.hidden = false;
        }
      });
    }).catch(function () { /* offline: the button comes back */ })
      .finally(function () { if (submit) submit.disabled = false; });
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-post]");
    if (button) { event.preventDefault(); post(button); }
  });

  // Keyboard: between rows, claim, open.
  document.addEventListener("keydown", function (event) {
    if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-uid]"));
    if (!rows.length) return;
    var at = rows.indexOf(document.activeElement);
    var key = event.key;
    if (key === "j" || key === "ArrowDown") {
      rows[Math.min(at + 1, rows.length - 1)].focus();
      event.preventDefault();
    } else if (key === "k" || key === "ArrowUp") {
      rows[Math.max(at - 1, 0)].focus();
      event.preventDefault();
    } else if (at >= 0 && key === "c") {
      var claim = rows[at].querySelector("[data-post$='/claim']");
      if (claim && !claim.disabled) post(claim);
    } else if (at >= 0 && key === "Enter") {
      var open = rows[at].querySelector("a[href]");
      if (open) open.click();
    }
  });

  // The opt-in alert for a new STAT study.
  var notify = document.getElementById("notify");
  if (notify) {
    notify.checked = window.localStorage.getItem("telerad.notify") === "on";
    notify.addEventListener("change", function () {
      window.localStorage.setItem("telerad.notify", notify.checked ? "on" : "off");
      if (notify.checked && window.Notification && Notification.permission === "default") {
        Notification.requestPermission();
      }
    });
  }
  var audio = null;
  function alertStat(row) {
    body.dataset.statAlerts = String(Number(body.dataset.statAlerts || 0) + 1);
    if (!notify || !notify.checked) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var tone = audio.createOscillator();
      tone.frequency.value = 880;
      tone.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.4);
    } catch (e) { /* no sound on this machine */ }
    if (window.Notification && Notification.permission === "granted") {
      // No patient on a lock screen: the site and the examination only.
      var cells = row.querySelectorAll("td");
      var what = cells.length > 3 ? cells[3].innerText + " · " + cells[2].innerText.split("\n")[0] : "";
      new Notification(document.body.dataset.statTitle || "telerad", { body: what });
    }
  }

  var liveBadge = document.getElementById("live");
  function setLive(on) {
    if (!liveBadge) return;
    liveBadge.textContent = on ? liveBadge.dataset.live : liveBadge.dataset.offline;
    liveBadge.classList.toggle("offline", !on);
  }

  // Live regions: the event stream, and a slow poll for what it does not
  // carry (arrivals).
  var regions = document.querySelectorAll("[data-src]");
  if (regions.length && window.EventSource) {
    regions.forEach(function (region) { remember(region, false); });
    var pending = {};
    var soon = function (region) {
      clearTimeout(pending[region.id]);
      pending[region.id] = setTimeout(function () { refresh(region); }, 150);
    };
    var listen = function () {
      var stream = new EventSource("/api/events/stream");
      regions.forEach(function (region) {
        (region.dataset.events || "").split(" ").forEach(function (kind) {
          if (kind) stream.addEventListener(kind, function () { soon(region); });
        });
      });
      stream.onopen = function () { setLive(true); body.dataset.live = "1"; };
      stream.onerror = function () {
        setLive(false);
        if (stream.readyState === EventSource.CLOSED) {
          // Closed for good (signed out, too many streams, a server
          // error): a reload says if signed out; the stream comes back.
          regions.forEach(refresh);
          setTimeout(listen, 5000);
        }
      };
    };
    listen();
    regions.forEach(function (region) {
      var every = Number(region.dataset.every);
      if (every > 0) setInterval(function () { refresh(region); }, every * 1000);
    });
  }

  tick();
  setInterval(tick, 1000);
})();
