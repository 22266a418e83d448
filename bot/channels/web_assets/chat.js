// Web chat client. Everything from the server is inserted with textContent, never as HTML.
(function () {
  "use strict";
  const $ = function (id) { return document.getElementById(id); };
  const ui = JSON.parse($("ui-strings").textContent);
  const config = JSON.parse($("chat-config").textContent);
  const log = $("log");
  const form = $("composer");
  const input = $("input");
  const typing = $("typing");
  const fileInput = $("files");
  const chosen = $("chosen");
  // Demo chats are other conversations on the server: keep their history apart here too.
  // So are the pages of other units (/?unit=<id>).
  const HISTORY = config.demo ? "motcua-history-demo"
    : config.unit ? "motcua-history-unit-" + config.unit : "motcua-history";
  const TOKEN = "motcua-token";
  const demoQuery = config.demo ? "?demo=1"
    : config.unit ? "?unit=" + encodeURIComponent(config.unit) : "";
  let locale = document.documentElement.lang;
  let busy = false;
  let pending = []; // files chosen for the next message: {file, url}
  let memoryToken = "";

  // Storage can be refused (a framed page with third-party storage blocked): work without it.
  function load(area, key) {
    try { return window[area].getItem(key); } catch (err) { return null; }
  }
  function keep(area, key, value) {
    try { window[area].setItem(key, value); } catch (err) { /* this page only */ }
  }

  function format(template, params) {
    return template.replace(/\{(\w+)\}/g, function (all, name) {
      return name in params ? String(params[name]) : all;
    });
  }

  // An embedded page gets no cookie (browsers withhold it in a cross-site frame), so it keeps
  // the chat token itself and sends it in a header.
  function requestHeaders(extra) {
    const headers = Object.assign({}, extra);
    headers[config.localeHeader] = locale;
    if (config.embed) headers[config.tokenHeader] = load("localStorage", TOKEN) || memoryToken;
    return headers;
  }

  function setLocale(code) {
    if (!ui[code]) return;
    locale = code;
    const strings = ui[code];
    document.documentElement.lang = code;
    document.title = strings.title;
    document.querySelectorAll("[data-ui]").forEach(function (el) {
      el.textContent = strings[el.dataset.ui];
    });
    document.querySelectorAll("[data-ui-label]").forEach(function (el) {
      el.setAttribute("aria-label", strings[el.dataset.uiLabel]);
    });
    document.querySelectorAll("[data-ui-placeholder]").forEach(function (el) {
      el.placeholder = strings[el.dataset.uiPlaceholder];
    });
    document.querySelectorAll("[data-ui-title]").forEach(function (el) {
      el.title = strings[el.dataset.uiTitle];
    });
    document.querySelectorAll(".lang").forEach(function (btn) {
      btn.setAttribute("aria-pressed", btn.dataset.lang === code ? "true" : "false");
    });
    renderChosen();
  }

  function saveHistory(entry) {
    // Photos and files are not kept (object URLs die with the page): their names are.
    const stored = {
      who: entry.who,
      text: entry.text,
      buttons: entry.buttons,
      error: entry.error,
      files: (entry.files || []).map(function (f) { return { name: f.name }; }),
      documents: (entry.documents || []).map(function (d) { return { filename: d.filename }; }),
    };
    const items = JSON.parse(load("sessionStorage", HISTORY) || "[]");
    items.push(stored);
    keep("sessionStorage", HISTORY, JSON.stringify(items.slice(-100)));
  }

  function fileTile(file) {
    if (file.url && /^image\//.test(file.type || "")) {
      const img = document.createElement("img");
      img.src = file.url;
      img.alt = file.name;
      return img;
    }
    const span = document.createElement("span");
    span.className = "file";
    span.textContent = "📎 " + file.name;
    return span;
  }

  function documentLink(doc) {
    if (!doc.data) {
      const span = document.createElement("span");
      span.className = "file";
      span.textContent = "📄 " + doc.filename;
      return span;
    }
    const bytes = Uint8Array.from(atob(doc.data), function (c) { return c.charCodeAt(0); });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([bytes], { type: doc.mime_type }));
    link.download = doc.filename;
    link.textContent = "📄 " + doc.filename;
    return link;
  }

  function show(entry, save) {
    const box = document.createElement("div");
    box.className = "msg " + entry.who + (entry.error ? " error" : "");
    if (entry.files && entry.files.length) {
      const row = document.createElement("div");
      row.className = "files";
      entry.files.forEach(function (f) { row.appendChild(fileTile(f)); });
      box.appendChild(row);
    }
    if (entry.text) box.appendChild(document.createTextNode(entry.text));
    if (entry.documents && entry.documents.length) {
      const row = document.createElement("div");
      row.className = "files";
      entry.documents.forEach(function (d) { row.appendChild(documentLink(d)); });
      box.appendChild(row);
    }
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
    box.scrollIntoView({ block: "end" });
    if (save) saveHistory(entry);
    return box;
  }

  function problem(text) {
    show({ who: "bot", text: text, error: true }, false);
  }

  function showReplies(list, failed) {
    const boxes = (list || []).map(function (r) {
      return show({ who: "bot", text: r.text, buttons: r.buttons, documents: r.documents,
                    error: failed }, true);
    });
    // A long answer (a procedure card) is read from its start, not from its last button.
    if (boxes.length && boxes[boxes.length - 1].getBoundingClientRect().bottom -
        boxes[0].getBoundingClientRect().top > log.clientHeight) {
      boxes[0].scrollIntoView({ block: "start" });
    }
  }

  function request(body, files) {
    let init;
    if (files.length) {
      const data = new FormData();
      if (body.text) data.append("text", body.text);
      if (body.payload) data.append("payload", body.payload);
      if (config.demo) data.append("demo", "1");
      if (config.unit) data.append("unit", config.unit);
      files.forEach(function (f) { data.append("file", f.file, f.file.name); });
      init = { method: "POST", headers: requestHeaders({}), body: data };
    } else {
      const json = Object.assign({}, body);
      if (config.demo) json.demo = true;
      if (config.unit) json.unit = config.unit;
      init = {
        method: "POST",
        headers: requestHeaders({ "Content-Type": "application/json" }),
        body: JSON.stringify(json),
      };
    }
    init.credentials = "same-origin";
    return fetch("/api/messages", init);
  }

  async function send(body, shownText, files, fromComposer) {
    if (busy) return false;
    busy = true;
    files = files || [];
    const shownFiles = files.map(function (f) {
      return { name: f.file.name, type: f.file.type, url: f.url };
    });
    if (shownText || shownFiles.length) {
      show({ who: "me", text: shownText || "", files: shownFiles }, true);
    }
    typing.hidden = false;
    log.scrollTop = log.scrollHeight; // the dots take room below the log: keep its end in view
    try {
      const res = await request(body, files);
      const data = await res.json();
      if (data.token) {
        memoryToken = data.token;
        keep("localStorage", TOKEN, data.token);
      }
      if (data.locale) setLocale(data.locale);
      showReplies(data.replies, !res.ok);
    } catch (err) {
      problem(ui[locale].network_error);
    } finally {
      typing.hidden = true;
      busy = false;
      // Back to the text box after typing; after a tap on a button, focus stays on the button
      // (on a phone, focusing the box would pop up the keyboard).
      if (fromComposer) input.focus();
    }
    return true;
  }

  // Files: checked here for a quick answer (the server checks again), previewed, sent with
  // the next message.
  function acceptable(file) {
    return /^image\//.test(file.type) || file.type === "application/pdf" ||
      /\.(pdf|heic|heif|jpe?g|png|webp)$/i.test(file.name);
  }

  function addFiles(list) {
    const strings = ui[locale];
    Array.prototype.forEach.call(list, function (file) {
      if (pending.length >= config.maxFiles) {
        problem(format(strings.too_many_files, { max: config.maxFiles }));
      } else if (!acceptable(file)) {
        problem(format(strings.file_type, { name: file.name }));
      } else if (file.size > config.maxFileBytes) {
        problem(format(strings.file_too_large, {
          name: file.name, mb: Math.round(config.maxFileBytes / (1024 * 1024)),
        }));
      } else {
        pending.push({ file: file, url: URL.createObjectURL(file) });
      }
    });
    renderChosen();
  }

  function renderChosen() {
    chosen.textContent = "";
    chosen.hidden = pending.length === 0;
    pending.forEach(function (item, index) {
      const li = document.createElement("li");
      if (/^image\//.test(item.file.type)) {
        const img = document.createElement("img");
        img.src = item.url;
        img.alt = "";
        li.appendChild(img);
      }
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = item.file.name;
      li.appendChild(name);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "✕";
      remove.setAttribute("aria-label", format(ui[locale].remove_file, { name: item.file.name }));
      remove.addEventListener("click", function () {
        pending.splice(index, 1);
        renderChosen();
        $("attach").focus();
      });
      li.appendChild(remove);
      chosen.appendChild(li);
    });
  }

  $("attach").addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    addFiles(fileInput.files);
    fileInput.value = ""; // the same file can be chosen again
  });

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if ((!text && !pending.length) || busy) return;
    const files = pending;
    input.value = "";
    pending = [];
    renderChosen();
    await send({ text: text }, text, files, true);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // The header's language buttons: the same as choosing a language in the chat.
  document.querySelectorAll(".lang").forEach(function (btn) {
    btn.addEventListener("click", function () {
      send({ payload: "lang:set:" + btn.dataset.lang }, btn.dataset.name);
    });
  });

  // Framed by a commune's site (embed.js): Escape closes the panel, and the panel's opening
  // puts the focus in the text box.
  if (config.embed && window.parent !== window) {
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") window.parent.postMessage({ type: "motcua:close" }, "*");
    });
    window.addEventListener("message", function (event) {
      if (event.source === window.parent && event.data && event.data.type === "motcua:focus") {
        input.focus();
      }
    });
  }

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
      const res = await fetch("/api/updates" + demoQuery, {
        credentials: "same-origin", cache: "no-store", headers: requestHeaders({}),
      });
      if (res.ok) showReplies((await res.json()).messages, false);
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

  const history = JSON.parse(load("sessionStorage", HISTORY) || "[]");
  if (history.length) {
    history.forEach(function (entry) { show(entry, false); });
  } else {
    send({ payload: "menu" }, null, [], config.embed);
  }
  schedulePolls();
})();
