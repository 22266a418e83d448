// Web chat client. Everything from the server is inserted with textContent, never as HTML.
(function () {
  "use strict";
  const ui = JSON.parse(document.getElementById("ui-strings").textContent);
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const typing = document.getElementById("typing");
  const HISTORY = "motcua-history";
  let locale = document.documentElement.lang;
  let busy = false;

  function setLocale(code) {
    if (!ui[code] || code === locale) return;
    locale = code;
    document.documentElement.lang = code;
    document.title = ui[code].title;
    document.getElementById("title").textContent = ui[code].title;
    document.getElementById("subtitle").textContent = ui[code].subtitle;
    input.placeholder = ui[code].placeholder;
    document.getElementById("send").textContent = ui[code].send;
    typing.textContent = ui[code].typing;
  }

  function saveHistory(entry) {
    const items = JSON.parse(sessionStorage.getItem(HISTORY) || "[]");
    items.push(entry);
    sessionStorage.setItem(HISTORY, JSON.stringify(items.slice(-100)));
  }

  function show(entry, save) {
    const box = document.createElement("div");
    box.className = "msg " + entry.who + (entry.error ? " error" : "");
    box.textContent = entry.text;
    if (entry.buttons && entry.buttons.length) {
      const row = document.createElement("div");
      row.className = "buttons";
      entry.buttons.forEach(function (b) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = b.label;
        btn.addEventListener("click", function () { send({ payload: b.payload }, b.label); });
        row.appendChild(btn);
      });
      box.appendChild(row);
    }
    log.appendChild(box);
    log.scrollTop = log.scrollHeight;
    box.scrollIntoView({ block: "end" });
    if (save) saveHistory(entry);
  }

  async function send(body, shownText) {
    if (busy) return;
    busy = true;
    if (shownText) show({ who: "me", text: shownText }, true);
    typing.hidden = false;
    try {
      const res = await fetch("/api/messages", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(body),
      });
      const data = await res.json();
      if (data.locale) setLocale(data.locale);
      (data.replies || []).forEach(function (r) {
        show({ who: "bot", text: r.text, buttons: r.buttons, error: !res.ok }, true);
      });
    } catch (err) {
      show({ who: "bot", text: ui[locale].network_error, error: true }, false);
    } finally {
      typing.hidden = true;
      busy = false;
      input.focus();
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || busy) return;
    input.value = "";
    send({ text: text }, text);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // Messages pushed outside a turn (a dossier change, a staff answer) wait on the server: poll
  // for them while the tab is visible, and at once when it becomes visible again. "?poll=N"
  // sets the interval in seconds (tests use 1), never under one second.
  const pollSeconds = Math.max(1, Number(new URLSearchParams(location.search).get("poll")) || 10);
  let polling = false;
  let timer = null;

  async function poll() {
    if (polling || document.visibilityState !== "visible") return;
    polling = true;
    try {
      const res = await fetch("/api/updates", { credentials: "same-origin", cache: "no-store" });
      if (res.ok) {
        const data = await res.json();
        (data.messages || []).forEach(function (r) {
          show({ who: "bot", text: r.text, buttons: r.buttons }, true);
        });
      }
    } catch (err) {
      // Offline for a moment: try again at the next tick.
    } finally {
      polling = false;
    }
  }

  function schedulePolls() {
    clearInterval(timer);
    timer = null;
    if (document.visibilityState !== "visible") return;
    poll();
    timer = setInterval(poll, pollSeconds * 1000);
  }
  document.addEventListener("visibilitychange", schedulePolls);

  const history = JSON.parse(sessionStorage.getItem(HISTORY) || "[]");
  if (history.length) {
    history.forEach(function (entry) { show(entry, false); });
  } else {
    send({ payload: "menu" }, null);
  }
  schedulePolls();
})();
