// The one-stop desk chat on a commune's own site. Include it once, anywhere in the page:
//   <script src="https://bot.example.gov.vn/static/embed.js" defer></script>
// data-demo="1" opens the demonstration mode; data-unit="<id>" the page of one unit of a
// deployment serving several (MOTCUA_UNITS); data-lang="en" sets the button's language
// (default: the page's own lang attribute, else Vietnamese). The chat page is opened in a frame,
// so the bot's server must list this site in MOTCUA_WEB_EMBED_ORIGINS.
// Styles are set through the DOM, never as markup, so a strict Content-Security-Policy on the
// commune's site does not block them; a shadow root keeps the site's own CSS out.
(function () {
  "use strict";
  const STRINGS = /*STRINGS*/{};
  const script = document.currentScript;
  if (!script || window.motcuaChatEmbedded) return;
  window.motcuaChatEmbedded = true;

  const src = new URL(script.src, location.href);
  const root = src.origin + src.pathname.replace(/static\/embed\.js$/, "");
  const wanted = (script.dataset.lang || document.documentElement.lang || "vi").slice(0, 2);
  const lang = STRINGS[wanted] ? wanted : "vi";
  const text = STRINGS[lang] || { title: "Chat", open: "Chat", close: "Close" };
  const query = new URLSearchParams({ embed: "1" });
  if (script.dataset.demo === "1") query.set("demo", "1");
  else if (script.dataset.unit) query.set("unit", script.dataset.unit);
  const chatUrl = root + "?" + query.toString();
  const ACCENT = "#b3261e";
  const FONT = 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif';

  function style(el, props) { Object.assign(el.style, props); return el; }
  function focusRing(el) {
    el.addEventListener("focus", function () {
      style(el, { outline: "3px solid #0b57d0", outlineOffset: "3px" });
    });
    el.addEventListener("blur", function () { style(el, { outline: "none" }); });
  }

  const host = document.createElement("div");
  host.id = "motcua-chat";
  const shadow = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;

  const launcher = style(document.createElement("button"), {
    position: "fixed", right: "16px", bottom: "16px", zIndex: "2147483000",
    minHeight: "52px", maxWidth: "calc(100vw - 32px)", padding: "6px 20px",
    border: "2px solid #fff", borderRadius: "26px",
    background: ACCENT, color: "#fff", font: "700 18px/1.2 " + FONT, cursor: "pointer",
    boxShadow: "0 4px 16px rgba(0,0,0,.3)",
  });
  launcher.type = "button";
  launcher.lang = lang;
  launcher.textContent = "💬 " + text.open;
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "motcua-chat-panel");
  focusRing(launcher);

  const panel = style(document.createElement("div"), {
    position: "fixed", zIndex: "2147483001", display: "none", flexDirection: "column",
    background: "#fff", overflow: "hidden", boxShadow: "0 8px 32px rgba(0,0,0,.35)",
  });
  panel.id = "motcua-chat-panel";
  panel.lang = lang;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", text.title);

  const bar = style(document.createElement("div"), {
    display: "flex", justifyContent: "flex-end", background: "#8c1d18", flexShrink: "0",
  });
  const close = style(document.createElement("button"), {
    minHeight: "44px", minWidth: "44px", padding: "0 14px", border: "0", background: "transparent",
    color: "#fff", font: "600 17px/1.2 " + FONT, cursor: "pointer",
  });
  close.type = "button";
  close.textContent = "✕ " + text.close;
  focusRing(close);
  bar.appendChild(close);
  panel.appendChild(bar);

  let frame = null;
  const small = window.matchMedia("(max-width: 480px)");

  function place() {
    // On a phone the panel takes the whole screen; elsewhere it sits above the button.
    if (small.matches) {
      style(panel, { inset: "0", width: "100%", height: "100%", borderRadius: "0" });
    } else {
      style(panel, {
        inset: "auto", right: "16px", bottom: "84px", width: "400px",
        height: "min(640px, calc(100vh - 110px))", borderRadius: "12px",
      });
    }
  }

  function open() {
    place();
    panel.style.display = "flex";
    launcher.setAttribute("aria-expanded", "true");
    if (small.matches) launcher.style.display = "none";
    if (!frame) {
      frame = style(document.createElement("iframe"), {
        border: "0", width: "100%", flex: "1", display: "block",
      });
      frame.title = text.title;
      frame.src = chatUrl;
      frame.addEventListener("load", function () { frame.focus(); });
      panel.appendChild(frame);
    } else {
      frame.focus();
      frame.contentWindow.postMessage({ type: "motcua:focus" }, src.origin);
    }
  }

  function shut() {
    panel.style.display = "none";
    launcher.style.display = "";
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", function () {
    if (panel.style.display === "none") open(); else shut();
  });
  close.addEventListener("click", shut);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") shut();
  });
  // Escape pressed inside the chat page (another origin) arrives as a message.
  window.addEventListener("message", function (event) {
    if (frame && event.origin === src.origin && event.source === frame.contentWindow &&
        event.data && event.data.type === "motcua:close") {
      shut();
    }
  });
  small.addEventListener("change", function () {
    if (panel.style.display === "none") return;
    place();
    launcher.style.display = small.matches ? "none" : "";
  });

  shadow.appendChild(launcher);
  shadow.appendChild(panel);
  function attach() { document.body.appendChild(host); }
  if (document.body) attach(); else document.addEventListener("DOMContentLoaded", attach);
})();
