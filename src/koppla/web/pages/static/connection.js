// Data Connection pages: small conveniences on top of forms that work without JavaScript.
(function () {
  "use strict";
  // A scope or website switcher goes on its own when its choice changes.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  // The private key field only matters for the (deprecated) JWT authorization type.
  var jwtOnly = document.querySelectorAll("[data-jwt-only]");
  var types = document.querySelectorAll('input[name="auth_type"]');
  function showKey() {
    var jwt = document.querySelector('input[name="auth_type"]:checked');
    jwtOnly.forEach(function (el) { el.hidden = !(jwt && jwt.value === "jwt"); });
  }
  types.forEach(function (input) { input.addEventListener("change", showKey); });
  if (types.length) { showKey(); }
})();
