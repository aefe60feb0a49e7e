/* The page's WebSocket to central (/ws/visit, protocol/home.py): connect, keep alive, reconnect with
 * back-off. The visit itself (resuming it with its token) is visit.js's business. */

const PING_MS = 20000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 10000;

const link = { ws: null, backoff: BACKOFF_MIN_MS, timer: null, stopped: false, onMessage: () => {}, onStatus: () => {} };

/** onMessage(msg) gets every message; onStatus('connected' | 'lost') every change of the link. */
export function start({ onMessage, onStatus }) {
  Object.assign(link, { onMessage, onStatus });
  setInterval(() => send({ type: 'ping' }), PING_MS);
  addEventListener('online', () => { if (!link.ws && !link.stopped) connect(); });
  connect();
}

function connect() {
  clearTimeout(link.timer);
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/visit`);
  link.ws = ws;
  ws.addEventListener('open', () => { link.backoff = BACKOFF_MIN_MS; });
  ws.addEventListener('message', (event) => {
    try {
      const msg = JSON.parse(event.data);
      if (msg.type === 'welcome') link.onStatus('connected');
      link.onMessage(msg);
    } catch (err) { console.error('cannot handle a message from central', err); }
  });
  ws.addEventListener('close', () => {
    if (link.ws !== ws) return;
    link.ws = null;
    if (link.stopped) return;
    link.onStatus('lost');
    const delay = Math.min(BACKOFF_MAX_MS, link.backoff * (0.8 + Math.random() * 0.4));
    link.backoff = Math.min(link.backoff * 2, BACKOFF_MAX_MS);
    link.timer = setTimeout(connect, delay);
  });
}

/** Close for good (the visit is over). */
export function stop() {
  link.stopped = true;
  link.ws?.close();
}

export function send(msg) {
  if (link.ws?.readyState !== WebSocket.OPEN) return false;
  link.ws.send(JSON.stringify(msg));
  return true;
}
