// The SQL editor: Ctrl/Cmd+Enter runs, history and saved queries load into the editor.
(function () {
  "use strict";

  function editor() { return document.getElementById("sql"); }

  function run() {
    var form = document.getElementById("query-form");
    if (form) { form.requestSubmit(document.getElementById("run")); }
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "Enter") { return; }
    if (target && target.id === "sql" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      run();
    } else if (target && target.id === "save-name") {
      event.preventDefault();
      document.getElementById("save").click();
    }
  });

  // A click on a result cell shows all of its value (cells are cut to one line).
  document.addEventListener("click", function (event) {
    var cell = event.target instanceof Element ? event.target.closest("#results td") : null;
    if (cell && !window.getSelection().toString()) { cell.classList.toggle("open"); }
  });

  // A click on a history entry or a saved query loads its SQL (the link works without JS too).
  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element ? event.target.closest("a.load-sql") : null;
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) { return; }
    var sql = editor();
    if (!sql) { return; }
    event.preventDefault();
    sql.value = link.getAttribute("data-sql") || "";
    sql.focus();
    sql.setSelectionRange(sql.value.length, sql.value.length);
  });
})();
