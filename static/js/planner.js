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
  for (const failed of ["htmx:responseError", "htmx:sendError"]) {
    document.body.addEventListener(failed, () => { reveal = false; });
  }
  const upload = document.getElementById("config-upload");
  upload.addEventListener("change", () => {
    const file = upload.files[0];
    if (!file) return;
    if (file.size > 1024 * 1024) { alert("config_file: over the 1 MiB limit"); return; }
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
