// The comparison page's column chooser: a tick per column; the unticked ones are hidden by one
// stylesheet rule per column, so the table htmx swaps in when sorting is hidden the same way.
// The choice is remembered in this browser (localStorage), as the columns that differ from the
// defaults, so a column added later shows or hides by its own default.
(function () {
  "use strict";
  const chooser = document.getElementById("compare-columns");
  const style = document.getElementById("compare-columns-style");
  if (!chooser || !style) return;
  const KEY = "quantdash.compare.columns";
  const boxes = [...chooser.querySelectorAll("input[data-column]")];
  const summary = chooser.querySelector("summary");

  function saved() {
    try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch (e) { return {}; }
  }

  function apply() {
    const hidden = boxes.filter((b) => !b.checked).map((b) => b.dataset.column);
    style.textContent = hidden.map((key) =>
      `table.compare .col-${key}, table.compare td.${key} { display:none; }`).join("\n");
    summary.textContent = hidden.length ? `Columns (${hidden.length} more to show)` : "Columns";
  }

  const choice = saved();
  for (const box of boxes) {
    if (box.dataset.column in choice) box.checked = choice[box.dataset.column];
  }
  chooser.addEventListener("change", (event) => {
    const box = event.target.closest("input[data-column]");
    if (!box) return;
    const now = saved();
    if (box.checked === (box.dataset.default === "1")) delete now[box.dataset.column];
    else now[box.dataset.column] = box.checked;
    try { localStorage.setItem(KEY, JSON.stringify(now)); } catch (e) { /* private mode: this page only */ }
    apply();
  });
  apply();
})();
