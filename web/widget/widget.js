/*
 * Kattenhuis chat widget: one <script src=".../widget/widget.js" defer></script> tag.
 *
 * Optional data attributes on the script tag:
 *   data-target  id of an element to render into (default: a floating panel with a launcher button)
 *   data-api     the assistant API's origin (default: where this script was loaded from)
 *   data-shop    the shop's origin for source links (default: https://www.kattenhuis.nl)
 *   data-lang    "nl" (default) or "en"
 *
 * Everything the server sends is rendered with textContent / createElement, never as HTML.
 * No inline scripts or style attributes: the page works under a strict Content-Security-Policy.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var ds = (script && script.dataset) || {};
  var API = (ds.api || new URL(script.src, location.href).origin).replace(/\/$/, "");
  var SHOP = (ds.shop || "https://www.kattenhuis.nl").replace(/\/$/, "");
  var SUPPORT_MAIL = "klantenservice@kattenhuis.nl"; // data/catalogue/policies/klantenservice.md
  var SUPPORT_PHONE = "020-1234567";
  var THREAD_KEY = "kh-chat-thread";
  var ROUTED = ["abstained", "service", "order", "other_species", "unknown_variant"]; // core/outcomes.py
  var LANG_KEY = "kh-chat-lang";

  var TEXT = {
    nl: {
      title: "Kattenhuis-assistent", open: "Chat met de assistent", close: "Sluit de chat",
      label: "Je vraag", placeholder: "Stel je vraag over producten, verzending, retour…",
      send: "Verstuur", stop: "Stop", fresh: "Nieuw gesprek", switchTo: "English", switchLang: "en",
      thinking: "De assistent denkt na…", writing: "De assistent schrijft…", sources: "Bronnen",
      up: "Nuttig", down: "Niet nuttig", thanks: "Bedankt voor je feedback.",
      feedbackFailed: "Feedback versturen is niet gelukt.",
      refused: "De assistent kan je hier niet mee helpen.",
      service: "Hiermee helpt de klantenservice je verder.",
      rateLimited: "Je stelt veel vragen kort na elkaar. Probeer het over {s} seconden opnieuw.",
      unavailable: "De assistent is tijdelijk niet beschikbaar. Probeer het later opnieuw.",
      invalid: "Deze vraag kan niet worden verwerkt. Maak hem korter of formuleer hem anders.",
      stopped: "Gestopt.", done: "Antwoord compleet.",
      help: "Kom je er niet uit? Neem contact op met de klantenservice: ",
      or: " of ", you: "Jij", assistant: "Assistent",
    },
    en: {
      title: "Kattenhuis assistant", open: "Chat with the assistant", close: "Close the chat",
      label: "Your question", placeholder: "Ask about products, shipping, returns…",
      send: "Send", stop: "Stop", fresh: "New conversation", switchTo: "Nederlands", switchLang: "nl",
      thinking: "The assistant is thinking…", writing: "The assistant is writing…", sources: "Sources",
      up: "Helpful", down: "Not helpful", thanks: "Thank you for your feedback.",
      feedbackFailed: "Sending feedback failed.",
      refused: "The assistant cannot help you with this.",
      service: "Customer service can help you with this.",
      rateLimited: "You are asking many questions in a short time. Please try again in {s} seconds.",
      unavailable: "The assistant is temporarily unavailable. Please try again later.",
      invalid: "This question cannot be processed. Please shorten or rephrase it.",
      stopped: "Stopped.", done: "Answer complete.",
      help: "Need more help? Contact customer service: ",
      or: " or ", you: "You", assistant: "Assistant",
    },
  };
  var lang = sessionStorage.getItem(LANG_KEY) || (ds.lang === "en" ? "en" : "nl");
  var labelled = []; // [element, key, attribute or null] re-labelled on a language switch
  var busy = null; // the AbortController of the running answer

  function t(key) { return TEXT[lang][key]; }

  function el(tag, cls, key, attr) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (key) { labelled.push([node, key, attr || null]); setLabel(node, key, attr); }
    return node;
  }

  function setLabel(node, key, attr) {
    if (attr) node.setAttribute(attr, t(key)); else node.textContent = t(key);
  }

  function relabel() {
    labelled.forEach(function (e) { setLabel(e[0], e[1], e[2]); });
    root.setAttribute("lang", lang);
  }

  // ---- the frame -----------------------------------------------------------------------------------------
  var target = ds.target ? document.getElementById(ds.target) : null;
  var root = el("section", "kh-chat");
  root.id = "kh-chat";
  root.setAttribute("aria-labelledby", "kh-chat-title");
  var head = el("header", "kh-head");
  var title = el("h2", null, "title");
  title.id = "kh-chat-title";
  var langBtn = el("button", "kh-btn", "switchTo");
  langBtn.type = "button";
  langBtn.id = "kh-lang";
  var freshBtn = el("button", "kh-btn", "fresh");
  freshBtn.type = "button";
  freshBtn.id = "kh-new";
  head.append(title, langBtn, freshBtn);
  var log = el("div", "kh-log");
  log.id = "kh-log";
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-busy", "false");
  log.tabIndex = 0;
  labelled.push([log, "title", "aria-label"]);
  var status = el("p", "kh-status");
  status.id = "kh-status";
  status.setAttribute("role", "status");
  var form = el("form", "kh-form");
  var label = el("label", null, "label");
  label.htmlFor = "kh-input";
  var input = el("textarea", "kh-input", "placeholder", "placeholder");
  input.id = "kh-input";
  input.rows = 2;
  input.maxLength = 2000;
  var send = el("button", "kh-btn", "send");
  send.type = "submit";
  send.id = "kh-send";
  var stop = el("button", "kh-btn kh-btn-quiet kh-hidden", "stop");
  stop.type = "button";
  stop.id = "kh-stop";
  form.append(label, input, send, stop);
  root.append(head, log, status, form);

  if (target) {
    target.append(root);
  } else {
    root.classList.add("kh-floating", "kh-hidden");
    var launcher = el("button", "kh-btn kh-launcher", "open");
    launcher.type = "button";
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "kh-chat");
    launcher.addEventListener("click", function () {
      var open = root.classList.toggle("kh-hidden") === false;
      launcher.setAttribute("aria-expanded", String(open));
      launcher.textContent = t(open ? "close" : "open");
      if (open) input.focus();
    });
    document.body.append(launcher, root);
  }
  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = new URL("widget.css", script.src).href;
  if (!document.querySelector('link[href="' + css.href + '"], link[href="/widget/widget.css"]')) document.head.append(css);
  relabel();

  // ---- messages ------------------------------------------------------------------------------------------
  function announce(text) { status.textContent = text; }

  function addUser(text) {
    var msg = el("div", "kh-msg kh-user");
    msg.setAttribute("aria-label", t("you"));
    var p = el("p", "kh-text");
    p.textContent = text;
    msg.append(p);
    log.append(msg);
    msg.scrollIntoView({ block: "end" });
  }

  function addAssistant() {
    var msg = el("div", "kh-msg kh-assistant");
    msg.setAttribute("aria-label", t("assistant"));
    var p = el("p", "kh-text");
    var state = el("p", "kh-state");
    msg.append(p, state);
    log.append(msg);
    return { msg: msg, text: p, state: state };
  }

  function setState(view, name, message) {
    view.msg.dataset.state = name;
    view.state.textContent = message || "";
    view.state.classList.toggle("kh-hidden", !message);
    if (message) announce(message);
  }

  function sourceLink(source) {
    // The catalogue has no per-document URLs: link to the shop's search for the document's title.
    var a = document.createElement("a");
    a.href = SHOP + "/zoeken?q=" + encodeURIComponent(String(source.title || source.id));
    a.textContent = String(source.title || source.id);
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.dataset.sourceId = String(source.id);
    return a;
  }

  function showSources(view, sources) {
    var old = view.msg.querySelector(".kh-sources-block");
    if (old) old.remove();
    if (!sources || !sources.length) return;
    var block = el("div", "kh-sources-block");
    var heading = el("p", "kh-sources-title", "sources");
    var list = el("ul", "kh-sources");
    sources.forEach(function (s) { var li = el("li"); li.append(sourceLink(s)); list.append(li); });
    block.append(heading, list);
    view.msg.insertBefore(block, view.state);
  }

  function showHelp(view) {
    if (view.msg.querySelector(".kh-help")) return;
    var p = el("p", "kh-help");
    var lead = el("span", null, "help");
    var mail = document.createElement("a");
    mail.href = "mailto:" + SUPPORT_MAIL;
    mail.textContent = SUPPORT_MAIL;
    var or = el("span", null, "or");
    var tel = document.createElement("a");
    tel.href = "tel:" + SUPPORT_PHONE.replace(/\D/g, "");
    tel.textContent = SUPPORT_PHONE;
    p.append(lead, mail, or, tel);
    view.msg.append(p);
  }

  function showFeedback(view, messageId) {
    var thread = sessionStorage.getItem(THREAD_KEY);
    if (!thread || !messageId) return;
    var bar = el("div", "kh-feedback");
    var up = el("button", "kh-btn kh-btn-quiet", "up");
    var down = el("button", "kh-btn kh-btn-quiet", "down");
    var note = el("span", "kh-feedback-note");
    [[up, "up"], [down, "down"]].forEach(function (pair) {
      pair[0].type = "button";
      pair[0].dataset.rating = pair[1];
      pair[0].setAttribute("aria-pressed", "false");
      pair[0].addEventListener("click", function () { rate(thread, messageId, pair[1], pair[0], [up, down], note); });
    });
    bar.append(up, down, note);
    view.msg.append(bar);
  }

  function rate(thread, messageId, rating, button, buttons, note) {
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(API + "/api/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ thread: thread, message_id: messageId, rating: rating }),
    }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      button.setAttribute("aria-pressed", "true");
      note.textContent = t("thanks");
      announce(t("thanks"));
    }).catch(function () {
      buttons.forEach(function (b) { b.disabled = false; });
      note.textContent = t("feedbackFailed");
    });
  }

  function finish(view, data) {
    view.text.textContent = String(data.answer || "");
    if (data.thread) sessionStorage.setItem(THREAD_KEY, data.thread);
    if (data.refused) {
      showSources(view, []);
      setState(view, "refused", t("refused"));
      showHelp(view);
    } else if (ROUTED.indexOf(data.mode) >= 0) { // core/outcomes.py ROUTED: the answer is the route
      showSources(view, []);
      setState(view, "service", t("service"));
      showHelp(view);
    } else {
      showSources(view, data.sources);
      setState(view, "done", "");
      announce(t("done"));
    }
    showFeedback(view, data.message_id);
  }

  // ---- asking --------------------------------------------------------------------------------------------
  function setBusy(controller) {
    busy = controller;
    log.setAttribute("aria-busy", controller ? "true" : "false");
    send.disabled = !!controller;
    stop.classList.toggle("kh-hidden", !controller);
    if (!controller && document.activeElement === stop) input.focus();
  }

  function handle(view, name, data) {
    if (name === "thread") {
      sessionStorage.setItem(THREAD_KEY, data.thread);
    } else if (name === "sources") {
      showSources(view, data.sources);
    } else if (name === "token") {
      if (view.msg.dataset.state === "thinking") setState(view, "streaming", t("writing"));
      view.text.append(document.createTextNode(String(data.text)));
      view.msg.scrollIntoView({ block: "end" });
    } else if (name === "blocked") {
      view.text.textContent = String(data.refusal || "");
    } else if (name === "final") {
      finish(view, data);
    } else if (name === "error") {
      setState(view, "error", t("unavailable"));
      showHelp(view);
    }
  }

  async function readStream(response, view) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var part = await reader.read();
      if (part.done) break;
      buffer = (buffer + decoder.decode(part.value, { stream: true })).replace(/\r\n/g, "\n");
      var blocks = buffer.split("\n\n");
      buffer = blocks.pop();
      blocks.forEach(function (block) {
        var name = "message";
        var lines = [];
        block.split("\n").forEach(function (line) {
          if (line.indexOf("event:") === 0) name = line.slice(6).trim();
          else if (line.indexOf("data:") === 0) lines.push(line.slice(5).replace(/^ /, ""));
        });
        if (lines.length) handle(view, name, JSON.parse(lines.join("\n")));
      });
    }
  }

  async function ask(question) {
    addUser(question);
    var view = addAssistant();
    setState(view, "thinking", t("thinking"));
    var controller = new AbortController();
    setBusy(controller);
    var body = { question: question };
    var thread = sessionStorage.getItem(THREAD_KEY);
    if (thread) body.thread = thread;
    try {
      var response = await fetch(API + "/api/chat/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (response.status === 404 && thread) { // the conversation expired or was deleted: start a new one
        sessionStorage.removeItem(THREAD_KEY);
        log.removeChild(view.msg);
        log.removeChild(log.lastChild);
        setBusy(null);
        return ask(question);
      }
      if (response.status === 429) {
        var wait = parseInt(response.headers.get("Retry-After") || "60", 10);
        setState(view, "rate-limited", t("rateLimited").replace("{s}", String(isNaN(wait) ? 60 : wait)));
      } else if (response.status === 422 || response.status === 413) {
        setState(view, "error", t("invalid"));
      } else if (!response.ok) {
        setState(view, "error", t("unavailable"));
        showHelp(view);
      } else {
        await readStream(response, view);
        if (view.msg.dataset.state === "thinking" || view.msg.dataset.state === "streaming") {
          setState(view, "error", t("unavailable")); // the stream ended without a final event
          showHelp(view);
        }
      }
    } catch (err) {
      if (controller.signal.aborted) {
        setState(view, "stopped", t("stopped"));
      } else {
        setState(view, "error", t("unavailable"));
        showHelp(view);
      }
    } finally {
      if (busy === controller) setBusy(null);
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var question = input.value.trim();
    if (!question || busy) return;
    input.value = "";
    ask(question);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  stop.addEventListener("click", function () { if (busy) busy.abort(); });
  langBtn.addEventListener("click", function () {
    lang = t("switchLang");
    sessionStorage.setItem(LANG_KEY, lang);
    relabel();
  });
  freshBtn.addEventListener("click", function () {
    if (busy) busy.abort();
    var thread = sessionStorage.getItem(THREAD_KEY);
    sessionStorage.removeItem(THREAD_KEY);
    if (thread) fetch(API + "/api/threads/" + encodeURIComponent(thread), { method: "DELETE" }).catch(function () {});
    log.replaceChildren();
    input.focus();
  });

  // ---- a reload in the same tab continues the conversation ------------------------------------------------
  var saved = sessionStorage.getItem(THREAD_KEY);
  if (saved) {
    fetch(API + "/api/threads/" + encodeURIComponent(saved)).then(function (r) {
      if (r.status === 404) { sessionStorage.removeItem(THREAD_KEY); return null; }
      return r.ok ? r.json() : null;
    }).then(function (data) {
      if (!data || log.childElementCount) return;
      (data.messages || []).forEach(function (m) {
        if (m.role === "user") { addUser(String(m.content)); return; }
        var view = addAssistant();
        finish(view, { answer: m.content, sources: m.sources, refused: m.refused, message_id: m.id });
      });
    }).catch(function () {});
  }
})();
