/* The live tap feed, drawn in the browser from plain rows (dashboard/pages/gates.py, _feed_row).
 *
 * At hundreds of taps a second, sending the feed as Dash components made both ends slow: the
 * server built and serialised a component tree per page per frame, and dash-renderer walked it.
 * The server now sends a list of rows to a dcc.Store; this draws them into the table's <tbody>,
 * reusing the <tr> of every row already shown (keyed by the tap's id). Text only — every value
 * goes in through textContent, never as HTML. */
(function () {
function draw(body, rows) {
    const shown = body.__rows || new Map();
    const next = new Map();
    const order = rows.map(function (row) {
        const id = row["data-event"];
        let tr = shown.get(id);
        if (!tr) {
            tr = document.createElement("tr");
            tr.className = row.k;
            tr.setAttribute("data-event", id);
            row.c.forEach(function (text) {
                const td = document.createElement("td");
                td.textContent = text;
                tr.appendChild(td);
            });
            // a denied tap links to 为什么被拒绝？ where the viewer may ask (issue 19, item 5)
            const why = body.getAttribute("data-why");
            if (row.w && why && tr.lastChild) {
                const a = document.createElement("a");
                a.className = "why-denied";
                a.href = row.w;
                a.textContent = why;
                tr.lastChild.appendChild(document.createTextNode(" "));
                tr.lastChild.appendChild(a);
            }
        }
        next.set(id, tr);
        return tr;
    });
    body.replaceChildren.apply(body, order);
    body.__rows = next;
}

// The security desk's feed store (dashboard/pages/gates.py FEED) is drawn straight into its
// table at each animation frame (coalesce.js), bypassing dash-renderer.
window.campuscardDirect = window.campuscardDirect || {};
window.campuscardDirect["gates-feed"] = function (props) {
    const body = document.getElementById("gates-feed-body");
    if (body && props.data) { draw(body, props.data); }
};
})();
