// Playground: one column per selected variant; each Send streams every column at once.
// Tokens arrive as server-sent events on a fetch() response body (POST, so EventSource won't do).
// A first send to several variants makes one comparison first, and every column joins it.
// With "Show token probabilities" on, each piece of the reply is a span shaded by how likely it
// was (the less likely, the darker); a click, a tap, or Enter on it opens a small popover with its
// probability and the alternatives the model weighed. The title keeps the same for mouse hover.
// A reopened chat puts the settings its last message was sent with back in the form.
(function () {
  "use strict";
  const { readEvents, describeError } = window.quantdashEvents;
  const script = document.getElementById("playground-script");
  const form = document.getElementById("chat-form");
  if (!form) return;
  const initial = JSON.parse(document.getElementById("playground-initial").textContent);
  const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
  const chatUrl = script.dataset.chatUrl;
  const comparisonsUrl = script.dataset.comparisonsUrl;
  const listUrl = script.dataset.listUrl;
  const cancelUrl = (id) => script.dataset.cancelUrl.replace("REQUEST_ID", encodeURIComponent(id));
  const columnsEl = document.getElementById("columns");
  const sendButton = document.getElementById("send");
  const stopButton = document.getElementById("stop");
  const errorEl = document.getElementById("chat-error");
  const showLogprobs = document.getElementById("show-logprobs");
  let columns = [];
  let comparison = initial.comparison;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function statsText(s) {
    if (!s || s.completion_tokens === undefined) return s && s.finish_reason ? s.finish_reason : "";
    const parts = [];
    if (s.tokens_per_s != null) parts.push(s.tokens_per_s.toFixed(1) + " tok/s");
    if (s.ttft_s != null) parts.push("first token " + s.ttft_s.toFixed(2) + " s");
    parts.push(s.prompt_tokens + " prompt + " + s.completion_tokens + " completion tokens");
    parts.push("context " + s.context_used + "/" + s.n_ctx);
    if (s.finish_reason && s.finish_reason !== "stop") parts.push(s.finish_reason);
    if (s.node_jobs) {
      // The runtime shares its node with a job: it generated with fewer threads, so this reply's
      // speed is not the node's quiet speed.
      parts.push((s.node_jobs === 1 ? "a job was" : s.node_jobs + " jobs were") +
                 " running on this node: generated with " + s.threads +
                 (s.threads === 1 ? " thread" : " threads"));
    }
    return parts.join(" · ");
  }

  function addMessage(column, role, content, stats) {
    const box = el("div", "pg-msg " + role);
    const text = el("span", "pg-text", content);
    box.append(el("span", "pg-role", role === "assistant" ? "" : role + ": "), text);
    const statsEl = el("div", "pg-stats", statsText(stats));
    box.append(statsEl);
    column.log.append(box);
    return { box, text, statsEl, pending: [] };
  }

  function percent(logprob) {
    return (Math.exp(logprob) * 100).toFixed(2) + "%";
  }

  // One line per token: its text and probability, then its most likely alternatives.
  function tokenTitle(entries) {
    return entries.map((e) => {
      const alternatives = (e.top_logprobs || []).map((a) => JSON.stringify(a.token) + " " + percent(a.logprob));
      return JSON.stringify(e.token) + " " + percent(e.logprob) +
        (alternatives.length ? "\nalternatives: " + alternatives.join(", ") : "");
    }).join("\n");
  }

  // A piece's text can be empty while the runtime holds back part of a character or a possible
  // stop string: its tokens' logprobs wait in `pending` for the text that comes out of them.
  // The piece is shaded by the probability of all its tokens together.
  function appendPiece(view, event) {
    if (event.logprobs) view.pending.push(...event.logprobs);
    if (!event.text) return;
    if (!view.pending.length) { view.text.append(event.text); return; }
    const span = el("span", "pg-token", event.text);
    const p = Math.exp(view.pending.reduce((sum, e) => sum + e.logprob, 0));
    span.title = tokenTitle(view.pending);
    span.dataset.p = p.toFixed(4);
    span.style.setProperty("--p", p.toFixed(4));
    span.setAttribute("role", "button");
    span.setAttribute("aria-haspopup", "dialog");
    span.setAttribute("aria-label", event.text + ", " + percent(Math.log(p)) + ": show alternatives");
    // One tab stop per reply (its first token); the arrow keys move between its tokens.
    span.tabIndex = view.text.querySelector(".pg-token") ? -1 : 0;
    span.entries = view.pending;
    view.text.append(span);
    view.pending = [];
  }

  // The popover: one for the page, filled for the token it is opened on.
  const popover = el("div", "pg-popover");
  popover.id = "token-popover";
  popover.setAttribute("role", "dialog");
  popover.setAttribute("aria-label", "Token probabilities");
  popover.hidden = true;
  document.body.append(popover);
  let openedOn = null;

  function openPopover(span) {
    popover.textContent = "";
    for (const entry of span.entries) {
      const table = el("table", "pg-alternatives");
      const chosen = el("tr", "chosen");
      chosen.append(el("td", "tok", JSON.stringify(entry.token)), el("td", "num", percent(entry.logprob)),
                    el("td", "what", "chosen"));
      table.append(chosen);
      for (const alt of entry.top_logprobs || []) {
        const row = el("tr", alt.token === entry.token ? "alternative same" : "alternative");
        row.append(el("td", "tok", JSON.stringify(alt.token)), el("td", "num", percent(alt.logprob)), el("td", "what", ""));
        table.append(row);
      }
      popover.append(table);
    }
    const close = el("button", "small pg-popover-close", "Close");
    close.type = "button";
    close.addEventListener("click", () => closePopover(true));
    popover.append(close);
    const box = span.getBoundingClientRect();
    popover.hidden = false;
    const left = Math.min(box.left + window.scrollX,
                          window.scrollX + document.documentElement.clientWidth - popover.offsetWidth - 8);
    popover.style.left = Math.max(window.scrollX + 4, left) + "px";
    popover.style.top = (box.bottom + window.scrollY + 4) + "px";
    if (openedOn) openedOn.setAttribute("aria-expanded", "false");
    openedOn = span;
    span.setAttribute("aria-expanded", "true");
  }

  function closePopover(refocus) {
    if (popover.hidden) return;
    popover.hidden = true;
    if (openedOn) {
      openedOn.setAttribute("aria-expanded", "false");
      if (refocus) openedOn.focus();
    }
    openedOn = null;
  }

  columnsEl.addEventListener("click", (event) => {
    const span = event.target.closest(".pg-token");
    if (!span || !span.entries) return;
    if (openedOn === span) closePopover(false); else openPopover(span);
  });
  columnsEl.addEventListener("keydown", (event) => {
    const span = event.target.closest(".pg-token");
    if (!span) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      if (openedOn === span) closePopover(false); else openPopover(span);
    } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      const tokens = [...span.parentElement.querySelectorAll(".pg-token")];
      const next = tokens[tokens.indexOf(span) + (event.key === "ArrowRight" ? 1 : -1)];
      if (!next) return;
      event.preventDefault();
      span.tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
      if (openedOn) openPopover(next);
    }
  });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closePopover(true); });
  document.addEventListener("click", (event) => {
    if (!popover.hidden && !popover.contains(event.target) && !event.target.closest(".pg-token")) closePopover(false);
  });

  function makeColumn(variantId, conversationId) {
    const info = initial.variants[String(variantId)] || { label: "#" + variantId };
    const root = el("div", "pg-column");
    root.dataset.variant = variantId;
    root.append(el("h3", "", info.label));
    const log = el("div", "pg-log");
    root.append(log);
    columnsEl.append(root);
    return { variant: String(variantId), conversation: conversationId || null, root, log,
             requestId: null, controller: null, started: null };
  }

  function selectedVariants() {
    return [...form.querySelectorAll("input[name=variant]:checked")].map((i) => i.value);
  }

  function rebuildColumns() {
    if (columns.some((c) => c.conversation)) return; // a chat has started: keep its columns
    columnsEl.textContent = "";
    columns = selectedVariants().slice(0, initial.max_side_by_side).map((v) => makeColumn(v));
  }

  function params() {
    const data = {};
    for (const name of ["temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens", "seed"]) {
      const value = form.elements[name].value.trim();
      if (value !== "") data[name] = Number(value);
    }
    const stop = form.elements.stop.value.split("\n").filter((s) => s);
    if (stop.length) data.stop = stop;
    if (showLogprobs.checked) data.logprobs = 5;
    return data;
  }

  async function streamColumn(column, content, sharedParams, system) {
    const view = addMessage(column, "assistant", "");
    column.root.setAttribute("aria-busy", "true");
    column.controller = new AbortController();
    try {
      const response = await fetch(chatUrl, {
        method: "POST", signal: column.controller.signal,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ variant: column.variant, conversation: column.conversation,
                               comparison, content, system, params: sharedParams }),
      });
      if (!response.ok) {
        let body = null;
        try { body = await response.json(); } catch (e) { /* not JSON */ }
        view.box.classList.add("error");
        view.text.textContent = describeError(response.status, body);
        return;
      }
      await readEvents(response, (event) => handleEvent(column, view, event));
    } catch (e) {
      if (e.name !== "AbortError") view.statsEl.textContent = "connection lost";
    } finally {
      column.requestId = null;
      column.controller = null;
      if (column.started) column.started();
      column.root.removeAttribute("aria-busy");
      updateButtons();
    }
  }

  function handleEvent(column, view, event) {
    if (event.type === "start") {
      column.requestId = event.request_id;
      column.conversation = event.conversation;
      if (column.started) column.started();
      updateButtons();
    } else if (event.type === "token") {
      appendPiece(view, event);
    } else if (event.type === "done") {
      view.statsEl.textContent = statsText(event.stats);
    } else if (event.type === "error") {
      view.statsEl.textContent = event.message;
      view.box.classList.add("error");
    }
  }

  function updateButtons() {
    const busy = columns.some((c) => c.controller);
    sendButton.disabled = busy;
    stopButton.disabled = !columns.some((c) => c.requestId);
  }

  form.addEventListener("change", (event) => {
    if (event.target.name !== "variant") return;
    if (selectedVariants().length > initial.max_side_by_side) {
      event.target.checked = false;
      errorEl.textContent = "Compare at most " + initial.max_side_by_side + " models at once.";
      return;
    }
    errorEl.textContent = "";
    rebuildColumns();
  });

  // A first send to several variants makes one comparison, which every column's conversation joins.
  async function startComparison(title) {
    const response = await fetch(comparisonsUrl, {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ title, variants: columns.map((c) => Number(c.variant)) }),
    });
    let body = null;
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) throw new Error(describeError(response.status, body));
    return body.id;
  }

  // Once every column of a new chat has started (or failed), the list shows it: htmx re-fetches
  // the list, and the address names the chat so that a reload reopens it.
  function showInList() {
    const first = columns.find((c) => c.conversation);
    if (!first) return;
    const query = comparison ? "?comparison=" + comparison : "?c=" + first.conversation;
    history.replaceState(null, "", query);
    htmx.ajax("GET", listUrl + query, { target: "#conversations", swap: "outerHTML" });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = form.elements.content.value.trim();
    errorEl.textContent = "";
    if (!columns.length) { errorEl.textContent = "Pick a model first."; return; }
    if (!content) { errorEl.textContent = "Write a message first."; return; }
    const isNew = !columns.some((c) => c.conversation);
    if (isNew) {
      sendButton.disabled = true;
      try {
        comparison = columns.length > 1 ? await startComparison(content) : null;
      } catch (e) {
        errorEl.textContent = e.message;
        return;
      } finally {
        updateButtons();
      }
    }
    const shared = params();
    // Side by side: every column gets the same seed, so differences come from the models.
    if (shared.seed === undefined && columns.length > 1) shared.seed = Math.floor(Math.random() * 2 ** 31);
    const system = form.elements.system.value;
    form.elements.content.value = "";
    for (const input of form.querySelectorAll("input[name=variant], textarea[name=system]")) input.disabled = true;
    const started = columns.map((column) => new Promise((resolve) => { column.started = resolve; }));
    for (const column of columns) {
      if (!column.conversation && system.trim()) addMessage(column, "system", system);
      addMessage(column, "user", content);
      streamColumn(column, content, shared, system);
    }
    if (isNew) Promise.all(started).then(showInList);
    updateButtons();
  });

  stopButton.addEventListener("click", async () => {
    for (const column of columns) {
      if (!column.requestId) continue;
      const controller = column.controller;
      try {
        await fetch(cancelUrl(column.requestId), { method: "POST", headers: { "X-CSRFToken": csrf } });
      } catch (e) { /* the abort below still stops it */ }
      // The stream ends by itself once the runtime stops; abort if it hasn't within 3 s.
      setTimeout(() => { if (column.controller === controller && controller) controller.abort(); }, 3000);
    }
  });

  // A reopened chat: its settings back in the form. A field absent from them was left blank.
  const settings = initial.settings || {};
  if (Object.keys(settings).length) {
    for (const name of ["temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens", "seed"]) {
      form.elements[name].value = settings[name] ?? "";
    }
    const stop = settings.stop || [];
    form.elements.stop.value = (typeof stop === "string" ? [stop] : stop).join("\n");
    showLogprobs.checked = settings.logprobs != null;
  }

  for (const c of initial.columns) {
    const column = makeColumn(c.variant, c.conversation);
    columns.push(column);
    for (const m of c.messages) addMessage(column, m.role, m.content, m.stats);
  }
  if (!columns.length) rebuildColumns();
  updateButtons();
})();
