// Planner: read an uploaded config.json into the paste box (so the plan stays in the URL), and show
// only the inputs for the chosen model source. Everything else is htmx attributes in the template.
(function () {
  const form = document.getElementById("plan-form");
  if (!form) return;
  const source = form.querySelector("[name=source]");
  function showSource() {
    form.querySelectorAll(".src").forEach((el) => {
      el.hidden = !el.classList.contains("src-" + source.value);
    });
    const custom = form.querySelector(".custom-hw");
    if (custom) custom.hidden = form.querySelector("[name=hardware]").value !== "custom";
  }
  form.addEventListener("change", showSource);
  showSource();
  // Each input points at its error slot (filled by the server, refreshed out of band by htmx)
  // and is marked invalid while the slot has text.
  function markErrors() {
    form.querySelectorAll(".field-error[id$='-error']").forEach((slot) => {
      const name = slot.id.slice(0, -"-error".length);
      const input = name === "config_file" ? document.getElementById("config-upload")
        : document.getElementById("id_" + name);
      if (!input) return;
      input.setAttribute("aria-describedby", slot.id);
      input.setAttribute("aria-invalid", slot.textContent.trim() ? "true" : "false");
    });
  }
  markErrors();
  document.body.addEventListener("htmx:afterSettle", markErrors);
  // "Estimate" (or Enter in a field) asks for the result, so once it is swapped in it is brought
  // into view: the button sits at the bottom of a long form, beside the middle of the results
  // table on a laptop and above the results on a phone. The plans that follow each edit update in
  // place without moving the page, so someone still filling the form keeps their place.
  const results = document.getElementById("results");
  let reveal = false;
  form.addEventListener("submit", () => { reveal = true; });
  document.body.addEventListener("htmx:afterSettle", (event) => {
    if (!reveal || event.detail.target !== results) return;
    reveal = false;
    const top = results.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight / 3) results.scrollIntoView({ block: "start" });
  });
  // One edit asks for the plan several times (the field's debounced input, its change on blur,
  // then Estimate): a request for the plan already on its way is dropped. The form queues its
  // requests (hx-sync "queue last") rather than replacing them, because htmx logs every request
  // it aborts as an error (htmx:sendAbort) and the server computes the aborted plan anyway.
  const query = () => new URLSearchParams(new FormData(form)).toString();
  let pending = null;
  form.addEventListener("htmx:confirm", (event) => {
    if (event.detail.elt !== form) return;   // the catalog search inside the form has its own requests
    const asked = query();
    if (asked === pending) event.preventDefault();
    pending = asked;
  });
  form.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.elt === form) pending = null;
  });
  for (const failed of ["htmx:responseError", "htmx:sendError"]) {
    document.body.addEventListener(failed, () => { reveal = false; });
  }
  // A file over the limit is refused here, in the words and the place the server uses for an
  // upload it refuses (the field's error slot), rather than read into the box and sent. The slot is
  // refreshed out of band by every plan htmx fetches, so the message is put back after each.
  const upload = document.getElementById("config-upload");
  const maxBytes = Number(upload.dataset.maxBytes);
  let uploadMessage = "";
  function showUploadError() {
    const slot = document.getElementById("config_file-error");
    if (uploadMessage) slot.textContent = uploadMessage;
    markErrors();
  }
  document.body.addEventListener("htmx:afterSettle", showUploadError);
  upload.addEventListener("change", (event) => {
    // The file input sits inside the plan form (it belongs to the upload form): its change is not
    // a plan edit for the plan form's htmx trigger.
    event.stopPropagation();
    const file = upload.files[0];
    if (!file) return;
    const count = (n) => n.toLocaleString("en-US");
    uploadMessage = file.size > maxBytes
      ? `${count(file.size)} bytes is over the 1 MiB limit (${count(maxBytes)} bytes)` : "";
    document.getElementById("config_file-error").textContent = uploadMessage;
    showUploadError();
    if (uploadMessage) return;
    file.text().then((text) => {
      form.querySelector("[name=config]").value = text;
      source.value = "config";
      showSource();
      htmx.trigger(form, "submit");
    });
  });
})();

// Copy buttons (the Fit card's llama-server command): the clipboard API, else select the text so
// Ctrl+C works. Delegated, because htmx swaps the results in.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const target = document.querySelector(button.dataset.copy);
  if (!target) return;
  const text = target.textContent;
  const selectIt = () => {
    const range = document.createRange();
    range.selectNodeContents(target);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    button.textContent = "Press Ctrl+C";
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(() => { button.textContent = "Copied"; }, selectIt);
  } else {
    selectIt();
  }
});
