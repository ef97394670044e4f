/* Live updates coalesced per animation frame, so a desk never falls behind its pushes.
 *
 * Dash delivers server pushes (set_props) from its websocket SharedWorker to the page through a
 * MessagePort; dash-renderer applies each one (store update, path recomputation, React render).
 * When the page is slower than the pushes — a busy machine, a background tab, hundreds of taps a
 * second — those messages queue up inside the browser: the screen lags further and further and
 * the renderer's memory grows with the backlog. Here every push is folded into the latest props
 * per component, and what has gathered is handed to dash-renderer once per animation frame as a
 * single batch: the work per frame is bounded by the number of components, never by the event
 * rate, and a page that was hidden or starved shows the newest state at once instead of
 * replaying the past. Anything that is not a set_props (callback answers, errors) flushes what
 * has gathered and passes through in order. Loaded before dash-renderer starts its worker
 * client (Dash loads assets first).
 *
 * A component whose id is registered in ``window.campuscardDirect`` (e.g. the tap feed, drawn
 * by feed.js) is drawn by that function at the frame instead: those pushes never go through
 * dash-renderer's store, path and callback machinery, which is most of a busy desk's cost. */
(function () {
    "use strict";
    const SET_PROPS = "set_props", SET_PROPS_BATCH = "set_props_batch";
    const desc = Object.getOwnPropertyDescriptor(MessagePort.prototype, "onmessage");
    if (!desc || !desc.set || window.__campuscardCoalescing) { return; }
    window.__campuscardCoalescing = { received: 0, applied: 0, frames: 0 };
    const stats = window.__campuscardCoalescing;
    window.campuscardDirect = window.campuscardDirect || {};

    function coalescing(handler) {
        let pending = new Map();     // componentId → merged props (latest value of each prop)
        let rendererId = null;
        let scheduled = false;

        function flush() {
            scheduled = false;
            if (!pending.size) { return; }
            const payload = [];
            pending.forEach(function (props, componentId) {
                const direct = window.campuscardDirect[componentId];
                if (direct) {
                    try { direct(props); } catch (err) { console.error(err); }
                } else {
                    payload.push({ componentId: componentId, props: props });
                }
            });
            stats.applied += pending.size;
            stats.frames += 1;
            pending = new Map();
            if (payload.length) {
                handler({ data: { type: SET_PROPS_BATCH, rendererId: rendererId,
                                  payload: payload } });
            }
        }

        function gather(item) {
            stats.received += 1;
            const props = pending.get(item.componentId);
            pending.delete(item.componentId);   // re-inserted: the batch keeps arrival order
            pending.set(item.componentId, Object.assign(props || {}, item.props));
        }

        return function (event) {
            const message = event && event.data;
            const type = message && message.type;
            if (type === SET_PROPS || type === SET_PROPS_BATCH) {
                rendererId = message.rendererId;
                (type === SET_PROPS ? [message.payload] : message.payload).forEach(gather);
                if (!scheduled) {
                    scheduled = true;
                    window.requestAnimationFrame(flush);
                }
                return;
            }
            flush();
            handler(event);
        };
    }

    Object.defineProperty(MessagePort.prototype, "onmessage", {
        configurable: true,
        enumerable: desc.enumerable,
        get: function () { return desc.get.call(this); },
        set: function (handler) {
            desc.set.call(this, typeof handler === "function" ? coalescing(handler) : handler);
        },
    });
})();
