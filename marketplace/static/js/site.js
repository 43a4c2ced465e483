// Small enhancements for every page; each works without this file too.
// - The menu folds behind a "Menu" button on narrow screens (without script it wraps).
// - A pledge form shows what the tokens cost as they are typed.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  var toggle = document.querySelector(".menu-toggle");
  var nav = document.getElementById("site-nav");
  if (toggle && nav) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") === "true";
      toggle.setAttribute("aria-expanded", String(!open));
      nav.classList.toggle("open", !open);
    });
  }

  // <output data-total-for="tokens" data-price-cents="2953" data-template="… {total}">
  Array.prototype.forEach.call(document.querySelectorAll("output[data-total-for]"), function (out) {
    var input = document.getElementById(out.getAttribute("data-total-for"));
    var price = parseInt(out.getAttribute("data-price-cents"), 10);
    var locale = document.documentElement.lang || "en";
    var money = new Intl.NumberFormat(locale, { style: "currency", currency: "EUR" });
    var count = new Intl.NumberFormat(locale);
    function show() {
      var tokens = parseInt(input.value, 10);
      if (!input.value || isNaN(tokens) || tokens < 1 || String(tokens) !== input.value.trim()) {
        out.textContent = "";
        return;
      }
      out.textContent = out.getAttribute("data-template")
        .replace("{tokens}", count.format(tokens))
        .replace("{total}", money.format((tokens * price) / 100));
    }
    if (input && price > 0) {
      input.addEventListener("input", show);
      show();
    }
  });
})();
