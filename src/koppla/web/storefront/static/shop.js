/*
 * Koppla demo shop: sends each shopper action through the real Adobe Web SDK (alloy), with the
 * XDM that the Magento storefront event collector builds for it (domain.md §3-§4).
 * No build step: plain browser JavaScript. Cart and account live in localStorage.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("koppla-shop").textContent);
  var store = config.store;
  var CART_KEY = "koppla-demo-cart";
  var ACCOUNT_KEY = "koppla-demo-account";
  var HISTORY_KEY = "koppla-demo-sent";
  var NO_ECID = "000000000000000000000000000000000000";
  var log = [];
  var queue = Promise.resolve();
  // Set when the server knows browsers cannot reach the edge: the page shows why at the top.
  var unreachable = config.warnings.length > 0;
  var NOT_SENT = "not sent: the Web SDK has no edge it accepts (see the warning at the top)";

  // ---- alloy: configure, consent, identity -------------------------------------------------
  // Without a configuration alloy would refuse, alloy stays unconfigured and nothing is sent.
  if (config.alloy) alloy("configure", config.alloy);
  // The demo shopper has accepted tracking; a real shop calls this from its consent banner.
  var consented = config.alloy
    ? alloy("setConsent", {
        consent: [{ standard: "Adobe", version: "1.0", value: { general: "in" } }],
      })
    : Promise.reject(new Error("alloy is not configured"));
  var ecid = consented
    .then(function () {
      return alloy("getIdentity", { namespaces: ["ECID"] });
    })
    .then(
      function (result) {
        return (result && result.identity && result.identity.ECID) || NO_ECID;
      },
      function () {
        return NO_ECID;
      }
    );

  function identityMap(id, xdm) {
    var map = { ECID: [{ id: id, primary: true }] };
    if (xdm.personalEmail && xdm.personalEmail.address) {
      map.email = [{ id: xdm.personalEmail.address, primary: false }];
    }
    return map;
  }

  /** Send one event (in order, after the ones before it); resolves when the edge answered. */
  function send(xdm) {
    var entry = { eventType: xdm.eventType, status: "queued", sentAt: null, ecid: null, xdm: xdm };
    log.push(entry);
    if (!config.alloy) {
      entry.status = NOT_SENT;
      remember(entry);
      renderLog();
      return queue;
    }
    renderLog();
    queue = queue.then(function () {
      return ecid
        .then(function (id) {
          xdm.identityMap = identityMap(id, xdm);
          xdm.personID = id;
          entry.ecid = id;
          entry.status = "sending";
          entry.sentAt = Date.now();
          renderLog();
          return alloy("sendEvent", { xdm: xdm });
        })
        .then(
          function () {
            entry.status = "sent";
            entry.answeredAt = Date.now();
          },
          function (error) {
            entry.status = "failed: " + (error && error.message ? error.message : error);
          }
        )
        .then(function () {
          remember(entry);
          renderLog();
        });
    });
    return queue;
  }

  /** Keep the visit's finished events in sessionStorage, so they outlive page changes. */
  function remember(entry) {
    var history = JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "[]");
    history.push(summary(entry));
    sessionStorage.setItem(HISTORY_KEY, JSON.stringify(history));
  }

  function summary(entry) {
    return {
      eventType: entry.eventType,
      status: entry.status,
      sentAt: entry.sentAt,
      answeredAt: entry.answeredAt || null,
      ecid: entry.ecid,
      page: document.URL,
      xdm: entry.xdm,
    };
  }

  // ---- XDM, as the collector builds it ------------------------------------------------------
  function round2(value) {
    return Math.round(value * 100) / 100;
  }

  function absolute(url) {
    return new URL(url, location.href).href;
  }

  function scope() {
    return Object.assign({}, store.commerceScope);
  }

  function lineItem(line) {
    return {
      SKU: line.sku,
      name: line.name,
      quantity: line.quantity,
      priceTotal: round2(line.price * line.quantity),
      productImageUrl: absolute(line.imageUrl),
      currencyCode: store.currencyCode,
      discountAmount: 0,
      selectedOptions: line.options.map(function (o) {
        return { attribute: o.optionLabel, value: o.valueLabel };
      }),
    };
  }

  function pageView() {
    return send({
      eventType: "web.webpagedetails.pageViews",
      web: {
        webPageDetails: {
          pageViews: { value: 1 },
          siteSection: config.page.pageType,
          name: config.page.pageName,
          URL: document.URL,
        },
        webReferrer: { URL: document.referrer },
      },
    });
  }

  function productView(product) {
    return send({
      eventType: "commerce.productViews",
      productListItems: [
        {
          SKU: product.sku,
          name: product.name,
          productImageUrl: absolute(product.imageUrl),
          priceTotal: product.price,
          currencyCode: product.currencyCode || store.currencyCode,
          discountAmount: 0,
        },
      ],
      commerce: { productViews: { value: 1 }, commerceScope: scope() },
    });
  }

  function cartEvent(eventType, measure, cart, lines, extra) {
    var commerce = { cart: { cartID: cart.id }, commerceScope: scope() };
    commerce[measure] = { value: 1 };
    Object.assign(commerce, extra || {});
    return send({ eventType: eventType, productListItems: lines.map(lineItem), commerce: commerce });
  }

  function orderTotal(cart) {
    var subtotal = cart.items.reduce(function (sum, l) {
      return sum + l.price * l.quantity;
    }, 0);
    return round2(subtotal + store.shippingAmount);
  }

  function purchase(cart, orderId, email) {
    var total = orderTotal(cart);
    return send({
      eventType: "commerce.purchases",
      productListItems: cart.items.map(lineItem),
      commerce: {
        purchases: { value: 1 },
        order: {
          purchaseID: orderId,
          currencyCode: store.currencyCode,
          priceTotal: total,
          taxAmount: 0,
          discountAmount: 0,
          orderType: "checkout",
          payments: [
            {
              paymentAmount: total,
              paymentType: store.paymentMethod,
              transactionID: orderId,
              currencyCode: store.currencyCode,
            },
          ],
        },
        shipping: { shippingMethod: store.shippingMethod, shippingAmount: store.shippingAmount },
        commerceScope: scope(),
      },
      personalEmail: { address: email },
    });
  }

  function signIn(email, accountId) {
    return send({
      eventType: "userAccount.login",
      userAccount: { login: 1 },
      person: { accountID: accountId },
      personalEmail: { address: email },
      commerce: { commerceScope: scope() },
    });
  }

  // ---- cart and account state -----------------------------------------------------------------
  function loadCart() {
    try {
      var cart = JSON.parse(localStorage.getItem(CART_KEY));
      if (cart && cart.id && Array.isArray(cart.items)) return cart;
    } catch (ignored) {
      /* a damaged cart starts over */
    }
    return { id: null, items: [] };
  }

  function saveCart(cart) {
    localStorage.setItem(CART_KEY, JSON.stringify(cart));
    showCartCount(cart);
  }

  function showCartCount(cart) {
    var count = cart.items.reduce(function (n, l) {
      return n + l.quantity;
    }, 0);
    var badge = document.getElementById("cart-count");
    if (badge) badge.textContent = String(count);
  }

  function randomId(length) {
    var chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    var bytes = crypto.getRandomValues(new Uint8Array(length));
    return Array.prototype.map
      .call(bytes, function (b) {
        return chars[b % chars.length];
      })
      .join("");
  }

  function accountIdFor(email) {
    var hash = 0;
    for (var i = 0; i < email.length; i++) hash = (hash * 31 + email.charCodeAt(i)) >>> 0;
    return String((hash % 90000) + 10000);
  }

  // ---- pages ----------------------------------------------------------------------------------
  function money(value) {
    return "$" + value.toFixed(2);
  }

  function renderLines(cart) {
    var body = document.querySelector("#cart-table tbody");
    if (!body) return;
    body.textContent = "";
    cart.items.forEach(function (line) {
      var row = document.createElement("tr");
      row.dataset.sku = line.sku;
      var options = line.options.map(function (o) {
        return o.optionLabel + ": " + o.valueLabel;
      });
      [
        line.name + (options.length ? " (" + options.join(", ") + ")" : ""),
        line.sku,
        String(line.quantity),
        money(line.price * line.quantity),
      ].forEach(function (text) {
        var cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
  }

  function onProductPage() {
    var product = config.product;
    productView(product);
    document.getElementById("add-to-cart").addEventListener("submit", function (event) {
      event.preventDefault();
      var form = event.target;
      var quantity = Math.max(1, parseInt(form.qty.value, 10) || 1);
      var options = product.options.map(function (o) {
        return { optionLabel: o.label, valueLabel: form.elements[o.label].value };
      });
      var sku = [product.sku]
        .concat(
          options.map(function (o) {
            return o.valueLabel;
          })
        )
        .join("-");
      var cart = loadCart();
      var wasEmpty = cart.items.length === 0;
      if (!cart.id) cart.id = randomId(32);
      var line = cart.items.find(function (l) {
        return l.sku === sku;
      });
      if (line) {
        line.quantity += quantity;
      } else {
        line = {
          sku: sku,
          name: product.name,
          price: product.price,
          quantity: quantity,
          imageUrl: product.imageUrl,
          options: options,
        };
        cart.items.push(line);
      }
      saveCart(cart);
      if (wasEmpty) cartEvent("commerce.productListOpens", "productListOpens", cart, [line]);
      cartEvent("commerce.productListAdds", "productListAdds", cart, [line]).then(function () {
        location.href = config.urls.cart;
      });
    });
  }

  function onCartPage() {
    var cart = loadCart();
    renderLines(cart);
    var subtotal = cart.items.reduce(function (sum, l) {
      return sum + l.price * l.quantity;
    }, 0);
    document.getElementById("cart-subtotal").textContent = money(subtotal);
    document.getElementById("cart-empty").hidden = cart.items.length > 0;
    var checkout = document.getElementById("checkout-button");
    checkout.disabled = cart.items.length === 0;
    if (cart.items.length) {
      cartEvent("commerce.productListViews", "productListViews", cart, cart.items, {
        order: { discountAmount: 0 },
      });
    }
    checkout.addEventListener("click", function () {
      cartEvent("commerce.checkouts", "checkouts", cart, cart.items, {
        order: { discountAmount: 0 },
      }).then(function () {
        location.href = config.urls.checkout;
      });
    });
  }

  function onCheckoutPage() {
    var cart = loadCart();
    renderLines(cart);
    document.getElementById("order-shipping").textContent = money(store.shippingAmount);
    document.getElementById("order-total").textContent = money(orderTotal(cart));
    var account = JSON.parse(localStorage.getItem(ACCOUNT_KEY) || "null");
    if (account) document.getElementById("email").value = account.email;
    document.getElementById("place-order").addEventListener("submit", function (event) {
      event.preventDefault();
      var current = loadCart();
      if (!current.items.length) return;
      var email = event.target.email.value.trim();
      var orderId = String(Math.floor(100000000 + Math.random() * 899999999));
      purchase(current, orderId, email).then(function () {
        localStorage.removeItem(CART_KEY);
        showCartCount({ items: [] });
        localStorage.setItem(ACCOUNT_KEY, JSON.stringify({ email: email }));
        document.getElementById("order-number").textContent = orderId;
        document.getElementById("order-confirmation").hidden = false;
        event.target.hidden = true;
      });
    });
  }

  function onSignInPage() {
    var account = JSON.parse(localStorage.getItem(ACCOUNT_KEY) || "null");
    if (account) document.getElementById("signin-email").value = account.email;
    document.getElementById("sign-in").addEventListener("submit", function (event) {
      event.preventDefault();
      var email = event.target.email.value.trim();
      var accountId = accountIdFor(email);
      // Magento publishes signIn on the attempt, before the password is checked.
      signIn(email, accountId).then(function () {
        localStorage.setItem(ACCOUNT_KEY, JSON.stringify({ email: email, accountId: accountId }));
        document.getElementById("signed-in-email").textContent = email;
        document.getElementById("signed-in").hidden = false;
      });
    });
  }

  // ---- the event log panel ---------------------------------------------------------------------
  function renderLog() {
    var list = document.getElementById("event-list");
    if (!list) return;
    list.textContent = "";
    log.forEach(function (entry) {
      var item = document.createElement("li");
      item.dataset.eventType = entry.eventType;
      item.dataset.status = entry.status;
      var head = document.createElement("div");
      var type = document.createElement("code");
      type.textContent = entry.eventType;
      var status = document.createElement("span");
      status.className = "status";
      status.textContent = " " + entry.status;
      head.appendChild(type);
      head.appendChild(status);
      if (unreachable && config.alloy && entry.status !== "sent") {
        var why = document.createElement("span");
        why.className = "why";
        why.textContent = " (see the warning at the top: the Web SDK cannot reach the edge)";
        head.appendChild(why);
      }
      var details = document.createElement("details");
      var summary = document.createElement("summary");
      summary.textContent = "XDM";
      var pre = document.createElement("pre");
      pre.textContent = JSON.stringify(entry.xdm, null, 2);
      details.appendChild(summary);
      details.appendChild(pre);
      item.appendChild(head);
      item.appendChild(details);
      list.appendChild(item);
    });
  }

  window.kopplaShop = {
    config: config,
    log: log,
    /** Resolves when every event queued so far has been answered by the edge. */
    settled: function () {
      return queue.then(function () {
        return log.map(summary);
      });
    },
  };

  showCartCount(loadCart());
  pageView();
  var page = document.body.dataset.page;
  if (page === "product") onProductPage();
  else if (page === "cart") onCartPage();
  else if (page === "checkout") onCheckoutPage();
  else if (page === "signin") onSignInPage();
})();
