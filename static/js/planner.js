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
  const upload = document.getElementById("config-upload");
  upload.addEventListener("change", () => {
    const file = upload.files[0];
    if (!file) return;
    if (file.size > 1024 * 1024) { alert("config_file: over the 1 MB limit"); return; }
    file.text().then((text) => {
      form.querySelector("[name=config]").value = text;
      source.value = "config";
      showSource();
      htmx.trigger(form, "submit");
    });
  });
})();
