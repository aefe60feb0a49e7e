/* Guests in the clerk's call: invite an interpreter or colleague by a one-time link, let them in, remove them,
 * and a tile with picture and sound for each (protocol/participants.py). The clerk offers to every guest;
 * the pairs live in /static/mesh/pairs.js, the citizen's own pair stays in call.js. */
import { Pairs } from '/static/mesh/pairs.js';
import { cloneTemplate, t } from './i18n.js';
import { announce, observed, showError, state, ui } from './page.js';
import { send } from './connection.js';

const ROLES = { interpreter: 'Interpreter', colleague: 'Colleague' };
const STATES = {
  invited: 'Link not used yet', joining: 'Checking camera and microphone', waiting: 'Waiting to be let in',
  in_call: 'In the call',
};
const GONE = {
  revoked: 'The link for %(who)s was revoked.', removed: '%(who)s was removed from the call.',
  left: '%(who)s left the call.', lost: 'The connection to %(who)s was lost.',
};

const guests = { pairs: null, visitId: null, rows: new Map() }; // rows: peer -> <li>

const who = (msg) => (msg.label ? `${msg.label} (${t(ROLES[msg.role])})` : t(ROLES[msg.role]));

/** A call began (call.js): guests may be invited; our media goes into every pair once it is ready. */
export function startGuests(call) {
  stopGuests();
  const visitId = call.visit.visit_id;
  guests.visitId = visitId;
  guests.pairs = new Pairs({
    visitId, iceServers: call.iceServers, send: (msg) => send(msg, { quiet: true }),
    onRemote: (peer, info, stream) => { tileOf(peer, info).querySelector('video').srcObject = stream; },
    onGone: (peer) => tileOf(peer)?.remove(),
  });
  observed.guests = guests.pairs;
  const pairs = guests.pairs;
  call.chain.then(() => { if (guests.pairs === pairs) pairs.setStream(call.stream); });
  ui.guestsPanel.hidden = false;
}

/** The call is over: every pair closes, the list and tiles go. */
export function stopGuests() {
  guests.pairs?.closeAll();
  guests.pairs = observed.guests = null;
  guests.visitId = null;
  guests.rows.clear();
  ui.guestList.replaceChildren();
  ui.guestTiles.replaceChildren();
  ui.guestsPanel.hidden = true;
}

const ours = (msg) => guests.pairs && msg.visit_id === guests.visitId;

/** guest.status: a row per guest, with what the clerk can do now. */
export function onGuestStatus(msg) {
  if (!ours(msg)) return;
  let row = guests.rows.get(msg.peer);
  if (msg.state === 'gone') {
    row?.remove();
    guests.rows.delete(msg.peer);
    guests.pairs.left(msg.peer);
    if (msg.reason && msg.reason !== 'revoked') announce(t(GONE[msg.reason], { who: who(msg) }));
    return;
  }
  if (!row) {
    row = cloneTemplate('tpl-guest');
    row.dataset.peer = msg.peer;
    guests.rows.set(msg.peer, row);
    ui.guestList.append(row);
    wireRow(row, msg.peer);
  }
  const was = row.dataset.state;
  row.dataset.state = msg.state;
  row.querySelector('.guest-who').textContent = who(msg);
  row.dataset.away = String(Boolean(msg.away));
  // Away: the guest's connection broke; their page reconnects by itself within the resume grace.
  row.querySelector('.guest-state').textContent = t(msg.away ? 'Connection lost – waiting for them to come back' : STATES[msg.state]);
  const box = row.querySelector('.guest-link-box');
  const field = row.querySelector('.guest-link');
  // A central that took over from another knows an unused link only by its digest and sends none: the link
  // this console shows stays good while the guest is still invited.
  if (msg.link) field.value = new URL(msg.link, location.origin).href;
  else if (msg.state !== 'invited') field.value = '';
  box.hidden = !field.value;
  row.querySelector('.guest-admit').hidden = msg.state !== 'waiting';
  row.querySelector('.guest-remove').textContent = t(msg.state === 'invited' ? 'Revoke link' : 'Remove from the call');
  if (msg.state === 'waiting' && was !== 'waiting') {
    announce(t('%(who)s is waiting to be let in.', { who: who(msg) }));
    row.querySelector('.guest-admit').focus();
  }
}

function wireRow(row, peer) {
  row.querySelector('.guest-admit').addEventListener('click',
    () => send({ type: 'guest.admit', visit_id: guests.visitId, peer }));
  row.querySelector('.guest-remove').addEventListener('click',
    () => send({ type: 'guest.remove', visit_id: guests.visitId, peer }));
  row.querySelector('.guest-copy').addEventListener('click', async () => {
    const field = row.querySelector('.guest-link');
    try {
      await navigator.clipboard.writeText(field.value);
    } catch { // no clipboard permission (or plain http): leave it selected for Ctrl+C
      field.select();
    }
    announce(t('Link copied. Send it to your guest.'));
  });
}

/** call.participant_joined: a guest was let in; we offer to them. */
export function onJoined(msg) {
  if (!ours(msg)) return;
  tileOf(msg.peer, msg);
  guests.pairs.joined(msg);
}

/** call.participant_left */
export function onLeft(msg) {
  if (ours(msg)) guests.pairs.left(msg.peer);
}

/** rtc.* of a pair with a guest (they carry `peer`). */
export function onGuestSignal(msg) {
  if (!ours(msg)) return;
  if (msg.type === 'rtc.offer') guests.pairs.offer(msg);
  else if (msg.type === 'rtc.answer') guests.pairs.answer(msg);
  else if (msg.type === 'rtc.candidate') guests.pairs.candidate(msg);
}

/** An error refusing one of our guest messages; true when it was said here. */
export function guestError(msg) {
  if (!msg.ref?.startsWith('guest.')) return false;
  if (msg.code === 'unknown_peer' || msg.code === 'not_your_visit') return true; // gone meanwhile: the list says so
  if (msg.code === 'rate_limited') showError(t('Too many links in a short time. Try again in %(seconds)s s.', { seconds: msg.retry_after_s }));
  else if (msg.code === 'wrong_state' && msg.ref === 'guest.invite') showError(t('At most two guests per call. Revoke a link or remove a guest first.'));
  else return false;
  return true;
}

function tileOf(peer, info = null) {
  let tile = ui.guestTiles.querySelector(`[data-peer="${CSS.escape(peer)}"]`);
  if (!tile && info) {
    tile = cloneTemplate('tpl-guest-tile');
    tile.dataset.peer = peer;
    ui.guestTiles.append(tile);
  }
  if (tile && info) {
    tile.querySelector('figcaption').textContent = who(info);
    tile.querySelector('video').setAttribute('aria-label', who(info));
  }
  return tile;
}

/** The invitation form in the call view. */
export function setUpGuests() {
  ui.guestInvite.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!guests.visitId) return;
    send({ type: 'guest.invite', visit_id: guests.visitId, role: ui.guestRole.value, label: ui.guestLabel.value.trim() });
    ui.guestLabel.value = '';
  });
}
