/* Model choice on the synthetic forms: choosing a registered model (a select whose
 * `data-model-path-for` names the path field) writes its directory into the path field; typing
 * another path turns the select back to "the path typed below". The server does the same (a
 * choice wins over the path), so the page works without this script too. */
(function () {
  "use strict";

  function wire(select) {
    var input = document.getElementById(select.getAttribute("data-model-path-for"));
    if (!input) return;
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var path = option && option.getAttribute("data-path");
      if (path) input.value = path;
    });
    input.addEventListener("input", function () {
      var option = select.options[select.selectedIndex];
      if (option && option.getAttribute("data-path") !== input.value) select.value = "";
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("select[data-model-path-for]"), wire);
})();
