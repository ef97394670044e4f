/* The emergency banner on every desk (issue 17, Build 2; dashboard/emergency_feed.py): a
 * websocket that sends the emergency modes in force and pending whenever they change; drawn as a
 * red (lockdown) or orange (unlock-all) band at the top of the page. Text only (textContent).
 * Reconnects with a growing delay; while away it keeps what it showed, marked as not current. */
(function () {
if (window.campuscardEmergency) { return; }
window.campuscardEmergency = true;

function band() {
    let el = document.getElementById("emergency-banner");
    if (!el) {
        el = document.createElement("div");
        el.id = "emergency-banner";
        el.setAttribute("role", "alert");
        el.style.cssText = "position:sticky;top:0;z-index:1000;font-weight:600;display:none";
        document.body.insertBefore(el, document.body.firstChild);
    }
    return el;
}

function draw(modes, stale) {
    const el = band();
    el.replaceChildren();
    modes.forEach(function (mode) {
        const line = document.createElement("div");
        line.className = "emergency-mode emergency-" + mode.kind + " emergency-" + mode.status;
        line.setAttribute("data-mode", String(mode.id));
        line.style.cssText = "padding:8px 16px;color:#fff;background:" +
            (mode.kind === "lockdown" ? "#a5281b" : "#c26a00") + (mode.status === "pending" ? ";opacity:.75" : "");
        line.textContent = "⚠ " + mode.text + (mode.reason ? " — " + mode.reason : "") + (stale ? " …" : "");
        el.appendChild(line);
    });
    el.style.display = modes.length ? "block" : "none";
}

let delay = 1000;
let shown = [];
function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + window.location.host + "/live/emergency/");
    ws.onopen = function () { delay = 1000; };
    ws.onmessage = function (event) {
        const data = JSON.parse(event.data);
        shown = data.modes || [];
        draw(shown, false);
    };
    ws.onclose = function () {
        draw(shown, true);
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 15000);
    };
}
if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", connect);
} else {
    connect();
}
})();
