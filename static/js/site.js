// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // Show deadlines in the visitor's own time zone (the server renders them in UTC).
  function localiseTimes() {
    var format;
    try {
      format = new Intl.DateTimeFormat(undefined, {
        dateStyle: "medium", timeStyle: "short", timeZoneName: "short"
      });
    } catch (e) {
      return;
    }
    document.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) {
        el.title = el.textContent;
        el.textContent = format.format(when);
      }
    });
  }

  // A second press on a submit button sends nothing new: the form is idempotent anyway,
  // this only spares the server and tells the person something is happening.
  function guardDoubleSubmit() {
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("button[type=submit]").forEach(function (button) {
          setTimeout(function () {
            button.disabled = true;
            if (button.dataset.busy) { button.textContent = button.dataset.busy; }
          }, 0);
        });
      });
    });
  }

  // Group card digits in fours as they are typed.
  function formatCardNumbers() {
    document.querySelectorAll("input[data-card-number]").forEach(function (input) {
      input.addEventListener("input", function () {
        var digits = input.value.replace(/\D/g, "").slice(0, 19);
        input.value = digits.replace(/(.{4})/g, "$1 ").trim();
      });
    });
  }

  // Picking a reward fills in its minimum amount if the amount is lower.
  function rewardAmounts() {
    var amount = document.querySelector("input[name=amount]");
    if (!amount) { return; }
    document.querySelectorAll("input[name=reward][data-minimum]").forEach(function (radio) {
      radio.addEventListener("change", function () {
        var minimum = parseFloat(radio.dataset.minimum);
        var current = parseFloat((amount.value || "0").replace(/,/g, ""));
        if (radio.checked && (isNaN(current) || current < minimum)) {
          amount.value = radio.dataset.minimumText;
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localiseTimes();
    guardDoubleSubmit();
    formatCardNumbers();
    rewardAmounts();
  });
}());
