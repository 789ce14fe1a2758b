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

  // A reward that ships: show the country field, and the shipping cost and the total before the
  // backer submits. The costs per country come with the reward (data-shipping, minor units); the
  // server recomputes them and refuses a country the reward does not ship to.
  function shippingTotal() {
    var total = document.getElementById("pledge-total");
    var field = document.querySelector("[data-shipping-field]");
    var amount = document.querySelector("input[name=amount]");
    var country = document.querySelector("select[name=shipping_country]");
    if (!total || !field || !amount || !country) { return; }
    var exponent = parseInt(total.dataset.exponent, 10);
    var format = new Intl.NumberFormat(document.documentElement.lang || "en", {
      style: "currency", currency: total.dataset.currency,
      minimumFractionDigits: exponent, maximumFractionDigits: exponent
    });
    function money(minor) { return format.format(minor / Math.pow(10, exponent)); }
    // Add-ons come on top of the amount, as shipping does (data-addon-price, minor units).
    function addons() {
      var sum = 0;
      document.querySelectorAll("input[data-addon-price]").forEach(function (input) {
        var quantity = parseInt(input.value || "0", 10);
        if (quantity > 0) { sum += quantity * parseInt(input.dataset.addonPrice, 10); }
      });
      return sum;
    }
    function update() {
      var chosen = document.querySelector("input[name=reward]:checked");
      var costs = chosen && chosen.dataset.shipping ? JSON.parse(chosen.dataset.shipping) : null;
      var extras = addons();
      var pledged = Math.round(parseFloat((amount.value || "0").replace(/,/g, "")) * Math.pow(10, exponent));
      field.hidden = !costs;
      if (!costs && extras > 0 && !isNaN(pledged) && pledged > 0) {
        total.textContent = total.dataset.totalText.replace("{total}", money(pledged + extras));
        total.hidden = false;
        return;
      }
      if (!costs || !country.value) { total.hidden = true; return; }
      var name = country.options[country.selectedIndex].text;
      if (!(country.value in costs)) {
        total.textContent = total.dataset.nowhereText.replace("{country}", name);
        total.hidden = false;
        return;
      }
      var shipping = costs[country.value];
      var text = total.dataset.shippingText.replace("{country}", name).replace("{cost}", money(shipping));
      if (!isNaN(pledged) && pledged > 0) {
        text += " · " + total.dataset.totalText.replace("{total}", money(pledged + shipping + extras));
      }
      total.textContent = text;
      total.hidden = false;
    }
    document.querySelectorAll("input[name=reward]").forEach(function (radio) {
      radio.addEventListener("change", update);
    });
    document.querySelectorAll("input[data-addon-price]").forEach(function (input) {
      input.addEventListener("input", update);
    });
    country.addEventListener("change", update);
    amount.addEventListener("input", update);
    update();
  }

  // The story editor's Preview button: without JavaScript it posts the form back and the page
  // shows the preview; with it, the same preview is fetched and shown in place.
  function markdownPreview() {
    document.querySelectorAll("form[data-preview-url]").forEach(function (form) {
      var button = form.querySelector("[data-preview-button]");
      var target = document.querySelector("[data-preview-target]");
      if (!button || !target || !window.fetch) { return; }
      button.addEventListener("click", function (event) {
        event.preventDefault();
        button.disabled = true;
        fetch(form.dataset.previewUrl, {
          method: "POST", body: new FormData(form), credentials: "same-origin",
          headers: { "X-Requested-With": "fetch" }
        }).then(function (response) {
          if (!response.ok) { throw new Error(response.status); }
          return response.text();
        }).then(function (html) {
          // The server sanitised this HTML (projects/markdown.py); it is our own fragment.
          target.innerHTML = html;
          target.scrollIntoView({ behavior: "smooth", block: "start" });
        }).catch(function () {
          if (form.requestSubmit) { form.requestSubmit(button); }
        }).finally(function () {
          button.disabled = false;
        });
      });
    });
  }

  // The pledge form's live matching estimate follows the amount typed, a moment after the
  // backer stops typing; without this script it shows the estimate for the amount it was sent.
  function matchEstimate() {
    var amount = document.querySelector("input[name=amount]");
    var form = amount && amount.form;
    if (!form || !form.querySelector("[data-match-estimate]")) { return; }
    var timer = null;
    var asked = amount.value;
    function refresh() {
      var block = form.querySelector("[data-match-estimate]");
      var value = amount.value.trim();
      if (!block || value === "" || value === asked) { return; }
      asked = value;
      fetch(block.dataset.matchEstimate + "?amount=" + encodeURIComponent(value), {
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (response) {
        // A half-typed or refused amount keeps the last estimate shown.
        return response.ok ? response.json() : null;
      }).then(function (answer) {
        if (!answer || !answer.html || amount.value.trim() !== value) { return; }
        // Our own server's fragment (matching/_match_estimate.html), escaped there.
        var holder = document.createElement("template");
        holder.innerHTML = answer.html.trim();
        var current = form.querySelector("[data-match-estimate]");
        if (current && holder.content.firstElementChild) { current.replaceWith(holder.content.firstElementChild); }
      }).catch(function () {});
    }
    function later() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 350);
    }
    amount.addEventListener("input", later);
    // Picking a reward may fill in its minimum (rewardAmounts), which sends no input event.
    form.addEventListener("change", later);
  }

  // The header's menu button (shown on narrow screens by site.css once this has run).
  function headerMenu() {
    var button = document.querySelector("[data-menu-button]");
    var header = button && button.closest(".site-header");
    if (!header) { return; }
    header.classList.add("has-menu");
    button.hidden = false;
    button.addEventListener("click", function () {
      var open = header.classList.toggle("is-open");
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    headerMenu();
    markdownPreview();
    localiseTimes();
    guardDoubleSubmit();
    formatCardNumbers();
    rewardAmounts();
    shippingTotal();
    matchEstimate();
  });
}());
