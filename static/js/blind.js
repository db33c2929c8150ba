// Blind compare: one prompt, two replies labelled A and B; the variants' names come only with
// the vote's answer. Each side streams as server-sent events on a fetch() response body (POST).
// Until the vote the page holds nothing that names a side's variant: the pair is an id, and
// the streams carry only text and token counts. Each reply is held back until both have ended,
// then shown together: one growing faster than the other would tell the smaller variant.
(function () {
  "use strict";
  const { readEvents, describeError } = window.quantdashEvents;
  const script = document.getElementById("blind-script");
  const form = document.getElementById("blind-form");
  if (!form) return;
  const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
  const url = (template, pair, side) => template.replace("/999999/", "/" + pair + "/").replace("/SIDE/", "/" + side + "/");
  const sendButton = document.getElementById("blind-send");
  const errorEl = document.getElementById("blind-error");
  const voteBox = document.getElementById("blind-vote");
  const resultEl = document.getElementById("blind-result");
  const sides = ["a", "b"].map((side) => {
    const root = document.getElementById("blind-side-" + side);
    return { side, root, title: root.querySelector("h3"), reply: root.querySelector(".bl-reply"),
             stats: root.querySelector(".bl-stats") };
  });
  let pair = null;

  async function postJson(address, body) {
    const response = await fetch(address, {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) throw new Error(describeError(response.status, data));
    return data;
  }

  function params() {
    const data = {};
    for (const name of ["temperature", "top_p", "max_tokens", "seed"]) {
      const value = form.elements[name].value.trim();
      if (value !== "") data[name] = Number(value);
    }
    return data;
  }

  // Resolves true once the side's reply has ended (done or error), false if it never started.
  async function streamSide(view) {
    view.root.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(url(script.dataset.sideUrl, pair, view.side), {
        method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf }, body: "{}",
      });
      if (!response.ok) {
        let body = null;
        try { body = await response.json(); } catch (e) { /* not JSON */ }
        view.stats.textContent = describeError(response.status, body);
        return false;
      }
      let ended = false;
      await readEvents(response, (event) => {
        if (event.type === "token") view.text += event.text;
        if (event.type === "done") {
          ended = true;
          view.ending = event.stats.completion_tokens + " tokens · " + event.stats.finish_reason;
        }
        if (event.type === "error") { ended = true; view.ending = event.message; }
      });
      return ended;
    } catch (e) {
      view.stats.textContent = "connection lost";
      return false;
    } finally {
      view.root.removeAttribute("aria-busy");
    }
  }

  function statsText(s) {
    if (!s || s.completion_tokens === undefined) return (s && (s.error || s.finish_reason)) || "";
    const parts = [s.completion_tokens + " tokens", s.finish_reason];
    if (s.tokens_per_s != null) parts.push(s.tokens_per_s.toFixed(1) + " tok/s");
    if (s.ttft_s != null) parts.push("first token " + s.ttft_s.toFixed(2) + " s");
    return parts.join(" · ");
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorEl.textContent = "";
    resultEl.textContent = "";
    const content = form.elements.content.value.trim();
    if (!content) { errorEl.textContent = "Write a message first."; return; }
    const ticked = [...form.querySelectorAll("input[name=variant]:checked")].map((i) => Number(i.value));
    const body = { content, system: form.elements.system.value, params: params() };
    if (ticked.length) body.variants = ticked; else body.model = Number(form.elements.model.value);
    sendButton.disabled = true;
    voteBox.disabled = true;
    for (const view of sides) {
      view.title.textContent = view.side.toUpperCase();
      view.text = "";
      view.ending = "";
      view.reply.textContent = "";
      view.stats.textContent = "writing… (both replies appear together)";
    }
    try {
      pair = (await postJson(script.dataset.pairsUrl, body)).id;
    } catch (e) {
      errorEl.textContent = e.message;
      sendButton.disabled = false;
      return;
    }
    const ended = await Promise.all(sides.map(streamSide));
    for (const view of sides) {
      view.reply.textContent = view.text;
      if (view.ending) view.stats.textContent = view.ending;
    }
    sendButton.disabled = false;
    if (ended.every((e) => e)) voteBox.disabled = false;
    else errorEl.textContent = "A reply did not come through; send the prompt again for a new pair.";
  });

  voteBox.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-vote]");
    if (!button || pair === null) return;
    errorEl.textContent = "";
    let answer;
    try {
      answer = await postJson(url(script.dataset.voteUrl, pair), { vote: button.dataset.vote });
    } catch (e) {
      errorEl.textContent = e.message;
      return;
    }
    for (const view of sides) {
      view.title.textContent = view.side.toUpperCase() + ": " + answer[view.side].label;
      view.stats.textContent = statsText(answer[view.side].stats);
    }
    const link = document.createElement("a");
    link.href = url(script.dataset.leaderboardUrl, answer.model);
    link.id = "blind-leaderboard-link";
    link.textContent = "the model's leaderboard";
    resultEl.textContent = "Vote recorded: " + button.textContent + ". See ";
    resultEl.append(link, " (voting again replaces this vote).");
  });
})();
