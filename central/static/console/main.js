/* Staff console: live waiting list, arrival alerts and the clerk's side of the video call.
 * This module routes central's messages to the parts: connection.js (the WebSocket), queue.js (the list),
 * alerts.js (chime, notifications), call.js (RTCPeerConnection). The CSP forbids inline code, so texts
 * come from #strings (i18n.js) and markup from <template>s in console.html. */
import { applyStrings, t } from './i18n.js';
import { showError, state, ui } from './page.js';
import * as link from './connection.js';
import { addVisit, fillTransfer, removeVisit, showSnapshot, tickAll, updateButtons } from './queue.js';
import { alertArrival, setUpAlerts } from './alerts.js';
import { startBookings } from './bookings.js';
import { assignCall, awaitConfirmation, endCall, failCall, noticeCall, onCandidate, onOffer, setUpCallControls, teardown } from './call.js';
import { guestError, onGuestSignal, onGuestStatus, onJoined, onLeft, setUpGuests } from './guests.js';

const ERRORS = {
  already_taken: 'Another clerk has already picked up this visit.', queue_empty: 'Nobody is waiting in this department.',
  closed: 'This department is closed now.', rate_limited: 'Too many messages to this citizen.',
};

const CONNECTION_TEXTS = {
  connecting: 'Connecting…', connected: 'Connected', lost: 'Connection lost. Reconnecting…',
  replaced: 'The console was opened in another window.', session_ended: 'Your session has ended. Please log in again.',
};
const CALL_STEPS = new Set(['visit.hangup', 'rtc.offer', 'rtc.answer', 'rtc.candidate', 'rtc.state', 'call.restart']);
const LOGIN_AFTER_MS = 3000; // long enough to read why the login page comes

const handlers = {
  'console.snapshot': onSnapshot,
  'queue.joined': (msg) => {
    addVisit(msg.visit);
    // A visit this clerk just transferred into another of their departments is no news to them, nor is one
    // that waited before central restarted and is back in its place.
    const known = msg.reason === 'restored' || (msg.reason === 'transferred' && state.ownTransfers.delete(msg.visit.visit_id));
    if (!known) alertArrival(msg.visit);
  },
  'queue.left': (msg) => removeVisit(msg.visit_id, msg.department),
  'call.assigned': assignCall,
  'call.failed': (msg) => failCall(msg.visit_id),
  'call.notice': noticeCall,
  'presence.changed': (msg) => setPresence(msg.presence),
  // With `peer`: a pair with a guest (guests.js); without: the citizen's pair (call.js).
  'rtc.offer': (msg) => (msg.peer ? onGuestSignal(msg) : onOffer(msg)),
  'rtc.answer': onGuestSignal,
  'rtc.candidate': (msg) => (msg.peer ? onGuestSignal(msg) : onCandidate(msg)),
  'guest.status': onGuestStatus,
  'call.participant_joined': onJoined,
  'call.participant_left': onLeft,
  'visit.ended': (msg) => endCall(msg.visit_id, msg.reason),
  error: onError,
  pong: () => {},
};

function onSnapshot(msg) {
  state.clockSkew = msg.server_time - Date.now() / 1000;
  link.settled();
  showLinkLost(false);
  const arrivedMeanwhile = showSnapshot(msg);
  // Arrivals while we were offline deserve the same alert as live ones (not on the first load).
  if (state.hadSnapshot) arrivedMeanwhile.forEach(alertArrival);
  state.hadSnapshot = true;
  setPresence(msg.presence);
  // In a call, central follows up with call.assigned {resumed: true}. If it does not count us in the call
  // (it restarted and the kiosk is not back yet, or the call ended meanwhile), wait a while for it.
  if (state.call && msg.presence !== 'in_call') awaitConfirmation();
  if (state.call) fillTransfer(ui.callTransfer, state.call.visit.department);
}

function onError(msg) {
  // Central sends this before closing our socket when the console is opened elsewhere; reconnecting
  // would take it back and start a ping-pong between the two windows.
  if (msg.code === 'replaced') {
    link.stopReconnecting('replaced');
    teardown(); // the call belongs to the other window now; free camera and microphone
    return;
  }
  // Logged out, password reset or deactivated: the socket closes and reconnecting cannot succeed.
  if (msg.code === 'session_ended') {
    link.stopReconnecting('session_ended');
    teardown();
    showError(t(CONNECTION_TEXTS.session_ended));
    setTimeout(() => location.assign('/login?next=/console'), LOGIN_AFTER_MS);
    return;
  }
  // Signalling that crossed the end of its call (or of a guest's part in it) is no news to the clerk.
  if (CALL_STEPS.has(msg.ref) && ['not_your_visit', 'wrong_state', 'unknown_peer'].includes(msg.code)) return;
  if (guestError(msg)) return;
  showError(ERRORS[msg.code] ? t(ERRORS[msg.code]) : t('Something went wrong: %(detail)s', { detail: msg.detail }));
}

function setConnection(status) {
  ui.connection.dataset.state = status;
  ui.connection.textContent = t(CONNECTION_TEXTS[status]);
  ui.reclaim.hidden = status !== 'replaced';
  if (status === 'lost') showLinkLost(true);
  updateButtons();
}

// The call's media flows peer to peer, so losing central does not end it: say so in the call view.
function showLinkLost(lost) { ui.callLink.hidden = !lost; }

function setPresence(presence) {
  state.presence = ui.presence.value = presence;
  ui.presence.disabled = presence === 'in_call'; // central refuses presence changes during a call
}

ui.presence.addEventListener('change',
  () => link.send({ type: 'presence.set', status: ui.presence.value }) || setPresence(state.presence));
ui.bannerClose.addEventListener('click', () => { ui.banner.hidden = true; });
ui.reclaim.addEventListener('click', link.connect);
setInterval(tickAll, 1000);
applyStrings(document);
setUpAlerts();
setUpCallControls();
startBookings();
setUpGuests();
link.start({ onMessage: (msg) => handlers[msg.type]?.(msg), onStatus: setConnection });
