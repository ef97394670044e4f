/* The card page's revocation panel (issue 17, Build 6; R-USE-1): for each loss report,
 * blacklisting or cancellation of this card, the readers that already hold it and those that do
 * not yet. Drawn from the snapshot embedded in the page, then from every snapshot the server
 * sends over the websocket (dashboard/revocation_feed.py) as readers report new credential
 * versions. Text only — never HTML from the server. */
(function () {
  "use strict";
  var root = document.getElementById("revocation-tracker");
  if (!root) return;
  var labels = JSON.parse(document.getElementById("revocation-labels").textContent);
  var list = root.querySelector(".rev-list");
  var status = root.querySelector(".rev-status");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function change(r) {
    var words = [];
    if (r.status !== "active") words.push(labels.status[r.status] || r.status);
    if (r.blacklisted) words.push(labels.blacklisted);
    return words.join(" · ");
  }

  var FOLDED_OVER = 12; // a long list of readers that have it folds (the missing ones never do)

  function readers(cls, title, rows, withState) {
    var box = el("div", cls);
    var head = el("h4", "", title + "（");
    head.appendChild(el("span", "n", String(rows.length)));
    head.appendChild(document.createTextNode("）"));
    var holder = box;
    if (!withState && rows.length > FOLDED_OVER) {
      holder = el("details");
      var summary = el("summary");
      summary.appendChild(head);
      holder.appendChild(summary);
      box.appendChild(holder);
    } else {
      box.appendChild(head);
    }
    var ul = el("ul");
    rows.forEach(function (d) {
      var text = d.code + " " + d.name;
      if (withState) text += " · " + (labels.states[d.state] || d.state);
      var li = el("li", "", text);
      li.setAttribute("data-device", d.code);
      li.setAttribute("data-state", d.state);
      ul.appendChild(li);
    });
    if (!rows.length) ul.appendChild(el("li", "nobody", labels.nobody));
    holder.appendChild(ul);
    return box;
  }

  function draw(data) {
    var blocks = data.revocations.map(function (r) {
      var block = el("div", "rev" + (r.version !== null && !r.missing.length ? " complete" : ""));
      block.id = "rev-" + r.id;
      block.setAttribute("data-version", r.version === null ? "" : String(r.version));
      var head = [change(r)];
      if (r.version === null) head.push(labels.pending);
      else {
        head.push(labels.version + " " + r.version);
        head.push(labels.published + " " + new Date(r.published * 1000).toLocaleString(document.documentElement.lang || undefined));
      }
      block.appendChild(el("p", "rev-head", head.join(" · ")));
      var cols = el("div", "rev-cols");
      cols.appendChild(readers("rev-have", labels.have, r.have, false));
      cols.appendChild(readers("rev-missing", labels.missing, r.missing, true));
      block.appendChild(cols);
      return block;
    });
    if (!blocks.length) blocks.push(el("p", "rev-none", labels.none));
    list.replaceChildren.apply(list, blocks);
    root.setAttribute("data-updates", String(Number(root.getAttribute("data-updates")) + 1));
  }

  function connect(delay) {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + root.getAttribute("data-ws"));
    ws.onopen = function () {
      delay = 1000;
      root.setAttribute("data-live", "1");
      status.textContent = labels.live;
    };
    ws.onmessage = function (message) {
      draw(JSON.parse(message.data));
    };
    ws.onclose = function (event) {
      root.setAttribute("data-live", "0");
      if (event.code === 4401 || event.code === 4403) return; // signed out / not allowed: stay put
      status.textContent = labels.offline;
      setTimeout(function () { connect(Math.min(delay * 2, 30000)); }, delay);
    };
  }

  draw(JSON.parse(document.getElementById("revocation-initial").textContent));
  connect(1000);
})();
