/* The console's one WebSocket to central (/ws/staff): connect, keep alive, reconnect with jittered back-off.
 * Speaks protocol/messages.py: STAFF_TO_CENTRAL out, CENTRAL_TO_STAFF in (docs/protocol.md). */
import { t } from './i18n.js';
import { showError } from './page.js';

const PING_MS = 20000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 15000;

const link = {
  ws: null, backoff: BACKOFF_MIN_MS, retryTimer: null, lastSeen: 0,
  stopped: null,          // why we no longer reconnect ('replaced'), or null
  onMessage: () => {}, onStatus: () => {},
};

/** Start talking to central; onMessage(msg) gets every message, onStatus(status) every change of the link. */
export function start({ onMessage, onStatus }) {
  Object.assign(link, { onMessage, onStatus });
  addEventListener('online', () => { if (!link.ws && !link.stopped) connect(); });
  setInterval(keepAlive, PING_MS);
  connect();
}

export function connect() {
  clearTimeout(link.retryTimer);
  link.stopped = null;
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/staff`);
  let opened = false;
  link.ws = ws;
  link.onStatus('connecting');
  ws.addEventListener('open', () => { opened = true; link.lastSeen = Date.now(); link.onStatus('connected'); });
  ws.addEventListener('message', (event) => {
    link.lastSeen = Date.now();
    try {
      link.onMessage(JSON.parse(event.data));
    } catch (err) { console.error('cannot handle', event.data.slice(0, 80), err); }
  });
  ws.addEventListener('close', () => connectionLost(ws, opened));
}

function connectionLost(ws, opened) {
  if (link.ws !== ws) return; // a socket we already gave up on
  link.ws = null;
  if (link.stopped) { link.onStatus(link.stopped); return; }
  link.onStatus('lost');
  if (!opened) checkSession();
  // Jitter, so that after a central restart not every console knocks at the same moment.
  const delay = Math.min(BACKOFF_MAX_MS, link.backoff * (0.8 + Math.random() * 0.4));
  link.backoff = Math.min(link.backoff * 2, BACKOFF_MAX_MS);
  link.retryTimer = setTimeout(connect, delay);
}

/** Central accepted us (its snapshot arrived): the next loss starts the back-off from the beginning.
 * Not on open: a socket that opens and closes at once must still back off. */
export function settled() { link.backoff = BACKOFF_MIN_MS; }

/** Do not reconnect when this socket closes (another window took the console over). */
export function stopReconnecting(reason) { link.stopped = reason; }

export const isOpen = () => link.ws?.readyState === WebSocket.OPEN;

/** Send msg if connected; otherwise tell the clerk (unless quiet) and return false. */
export function send(msg, { quiet = false } = {}) {
  if (isOpen()) { link.ws.send(JSON.stringify(msg)); return true; }
  if (!quiet) showError(t('Not connected. Try again in a moment.'));
  return false;
}

// A refused handshake (expired session) looks like any network error; ask the page itself.
async function checkSession() {
  try {
    const res = await fetch('/console', { method: 'HEAD', redirect: 'manual', cache: 'no-store' });
    if (res.type === 'opaqueredirect') location.assign('/login?next=/console');
  } catch { /* offline: keep retrying */ }
}

function keepAlive() {
  const ws = link.ws;
  if (ws?.readyState !== WebSocket.OPEN) return;
  // No frame (not even a pong) for 2.5 intervals: the socket is half-open, so drop it and reconnect.
  if (Date.now() - link.lastSeen > 2.5 * PING_MS) { ws.close(); connectionLost(ws, true); return; }
  send({ type: 'ping' }, { quiet: true });
}
