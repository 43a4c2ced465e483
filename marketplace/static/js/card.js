// Collect a new card with Stripe Elements and submit its PaymentMethod id with the form.
// Loaded only when a publishable key is configured; saved cards work without it.
(function () {
  "use strict";
  var holder = document.querySelector("[data-stripe-key]");
  if (!holder || typeof Stripe === "undefined") { return; }
  var stripe = Stripe(holder.getAttribute("data-stripe-key"));
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  var form = holder.closest("form");
  var target = form.querySelector("[data-stripe-target]");
  form.addEventListener("submit", function (event) {
    var chosen = form.querySelector("input[type=radio][name=payment_method]:checked");
    if (chosen || target.value) { if (chosen) { target.disabled = true; } return; }
    event.preventDefault();
    stripe.createPaymentMethod({ type: "card", card: card }).then(function (result) {
      if (result.error) {
        holder.insertAdjacentHTML("beforeend", "<p class='field-error' role='alert'></p>");
        holder.lastChild.textContent = result.error.message;
        return;
      }
      target.value = result.paymentMethod.id;
      form.submit();
    });
  });
})();
