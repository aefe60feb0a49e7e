/* Telling the clerk that a citizen arrived: screen reader, a chime, a desktop notification. */
import { t, whereFrom } from './i18n.js';
import { announce, observed, state, ui } from './page.js';

// A burst of arrivals (a kiosk flooding, a reconnect) gets one chime and one notification per department,
// not one per visit: the list and the page title show how many wait.
const ALERT_GAP_MS = 5000;
const lastAlert = new Map(); // department slug -> Date.now() of its last chime

let audio = null;
// Browsers start audio only after a user gesture, so the context is unlocked on the first click or key.
function unlockAudio() {
  try { audio ??= new AudioContext(); } catch { return Promise.resolve(); }
  return audio.state === 'suspended' ? audio.resume().catch(() => {}) : Promise.resolve();
}
addEventListener('pointerdown', unlockAudio, { capture: true });
addEventListener('keydown', unlockAudio, { capture: true });

function chime() {
  // A suspended context would keep the tones and play them late, at the clerk's next click.
  if (audio?.state !== 'running') return;
  const now = audio.currentTime;
  for (const [frequency, start] of [[880, 0], [660, 0.25]]) { // two falling tones, like a door bell
    const osc = new OscillatorNode(audio, { frequency }), gain = new GainNode(audio, { gain: 0.0001 });
    gain.gain.setValueAtTime(0.0001, now + start);
    gain.gain.exponentialRampToValueAtTime(0.3, now + start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + start + 0.4);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + start); osc.stop(now + start + 0.45);
  }
}

function notify(title, body, tag) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    const note = new Notification(title, { body, tag });
    note.onclick = () => { window.focus(); note.close(); };
  } catch { /* e.g. mobile browsers that only notify from a service worker */ }
}

// A visit that leaves again within a few seconds (a mistaken press, a kiosk flooding request and cancel)
// is no news: the sound, the notification and the announcement wait this long, and only come if the
// visit is still waiting then (queue.left removed it otherwise).
const SETTLE_MS = 3000;

/** A visit arrived in one of the clerk's waiting rooms. */
export function alertArrival(visit) {
  observed.alerts.push({ visit_id: visit.visit_id, at: Date.now() });
  setTimeout(() => {
    if (state.departments.get(visit.department)?.waiting.has(visit.visit_id)) soundArrival(visit);
  }, SETTLE_MS);
}

function soundArrival(visit) {
  const where = [whereFrom(visit), state.departments.get(visit.department)?.name].filter(Boolean).join(' · ');
  announce(`${t('A citizen is waiting')}: ${where}`);
  const now = Date.now();
  if (now - (lastAlert.get(visit.department) ?? -Infinity) < ALERT_GAP_MS) return;
  lastAlert.set(visit.department, now);
  observed.chimes.push({ department: visit.department, at: now });
  // Mid-call a chime would also reach the citizen; the title and the notification still tell the clerk.
  if (!state.call) chime();
  // Always notify, not only when document.hidden: a visible tab may still be covered by other windows.
  notify(t('A citizen is waiting'), where, visit.department);
}

function renderNotifyButton() {
  const permission = 'Notification' in window ? Notification.permission : 'denied';
  ui.notify.textContent = t(permission === 'default' ? 'Enable notifications' : 'Test alert');
  ui.notifyHint.textContent = t('Notifications are blocked in the browser settings.');
  ui.notifyHint.hidden = permission !== 'denied';
}

/** The "Enable notifications" / "Test alert" button. */
export function setUpAlerts() {
  ui.notify.addEventListener('click', async () => {
    await unlockAudio();
    if ('Notification' in window && Notification.permission === 'default') await Notification.requestPermission();
    renderNotifyButton();
    chime(); // lets the clerk check the volume now rather than when the first citizen arrives
    notify('Amtsklingel', t('Notifications are on.'), 'test');
  });
  renderNotifyButton();
}
