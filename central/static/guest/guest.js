/* The guest's page: open the clerk's one-time link, check camera and microphone, wait to be let in, then one
 * tile per participant (protocol/guests.py). The link's secret is in the fragment, so no request carries it;
 * it is said once, on /ws/guest, when the guest starts, and then taken out of the address bar.
 *
 * A lost socket (the guest's network, or central's leader changing: close code 1012) is not the end: the page
 * says so, reconnects with back-off for as long as central waits for it (the resume grace), and comes back
 * with the rejoin key of the last guest.welcome, kept in this page's memory only. */
import { N_, pageLanguage, t } from '/static/citizen/strings.js';
import { levelMeter } from '/static/devices/level_meter.js';
import { Pairs, rtcServers } from '/static/mesh/pairs.js';

const $ = (selector) => document.querySelector(selector);
const ui = {
  status: $('#status'), title: $('#title'), start: $('#start'), ready: $('#ready'), preview: $('#preview'),
  level: $('#level'), deviceNote: $('#device-note'), joiningAs: $('#joining-as'), tiles: $('#tiles'),
  ownVideo: $('#own-video'), mute: $('#mute'), camera: $('#camera'), endedText: $('#ended-text'),
  chooser: document.querySelector('[data-testid=language-chooser]'),
};
const ROLES = { citizen: N_('Citizen'), clerk: N_('Clerk'), interpreter: N_('Interpreter'), colleague: N_('Colleague') };
const ENDINGS = {
  invalid: N_('This link does not open a call (any more). It works once and only during its call. Please ask the person who invited you for a new link.'),
  removed: N_('The clerk has ended your part in the call. Thank you.'),
  over: N_('The call has ended. Thank you.'),
  left: N_('You left the call.'),
  lost: N_('The connection to the city was lost. Please ask the clerk for a new link.'),
  gone: N_('While the connection was lost, the call ended or the clerk ended your part in it. Thank you.'),
};
const SECRET = /^[A-Za-z0-9_-]{22,64}$/;
// Reconnecting: 1 s, 2 s, 4 s … at most 10 s apart (with some jitter, so that many guests do not come back at
// once), and for as long as central waits for the guest (guest.welcome's rejoin_within_s, the resume grace):
// after it the guest is gone there anyway.
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 10000;
const RECONNECT_FOR_MS = 120000; // central's default grace, if it does not say

const state = { socket: null, welcome: null, stream: null, pairs: null, ended: false, stopMeter: () => {},
  step: 'intro', lostSince: null, backoff: BACKOFF_MIN_MS, retry: null };
window.amtsklingel = { state }; // for the end-to-end tests: the pairs and their connections

function show(step) {
  state.step = step;
  for (const section of document.querySelectorAll('[data-step]')) section.hidden = section.dataset.step !== step;
}

function end(why) {
  if (state.ended) return;
  state.ended = true;
  clearTimeout(state.retry);
  ui.status.textContent = '';
  state.pairs?.closeAll();
  state.stream?.getTracks().forEach((track) => track.stop()); // the camera light goes off
  state.stopMeter();
  if (state.socket?.readyState === WebSocket.OPEN) state.socket.close();
  ui.endedText.textContent = t(ENDINGS[why]);
  show('ended');
  ui.title.focus();
}

function send(message) {
  if (state.socket?.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(message));
}

// -- the link: keep the secret when the language is changed (the chooser reloads the page) ------------
const secret = location.hash.slice(1);
if (SECRET.test(secret)) {
  ui.chooser?.querySelectorAll('a').forEach((a) => { a.href += location.hash; });
} else {
  end('invalid');
}

ui.start.addEventListener('click', () => {
  ui.start.disabled = true;
  history.replaceState(null, '', location.pathname); // the secret is used now: out of the address bar
  if (ui.chooser) ui.chooser.hidden = true; // a reload would need a new link
  connect({ type: 'guest.hello', link: secret, language: pageLanguage() });
});

// -- the socket, and coming back after losing it ----------------------------------------------------------
function connect(first) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/ws/guest`);
  state.socket = socket;
  socket.addEventListener('open', () => send(first));
  socket.addEventListener('message', (event) => { if (state.socket === socket) onMessage(JSON.parse(event.data)); });
  socket.addEventListener('close', () => { if (state.socket === socket) lost(); });
}

function lost() {
  state.socket = null;
  if (state.ended) return;
  if (!state.welcome) { end('invalid'); return; } // the link itself was not taken
  state.lostSince ??= Date.now();
  const within = state.welcome.rejoin_within_s ? state.welcome.rejoin_within_s * 1000 : RECONNECT_FOR_MS;
  if (!state.welcome.rejoin || Date.now() - state.lostSince >= within) { end('lost'); return; }
  ui.status.textContent = t('Connection lost. Reconnecting…');
  const delay = Math.min(BACKOFF_MAX_MS, state.backoff * (0.8 + Math.random() * 0.4));
  state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX_MS);
  state.retry = setTimeout(() => connect({ type: 'guest.rejoin', key: state.welcome.rejoin, language: pageLanguage() }),
    delay);
}

function welcome(msg) {
  const back = state.welcome !== null;
  state.welcome = msg; // its rejoin key is the one to come back with next time
  if (!back) { checkDevices(); return; }
  state.lostSince = null;
  state.backoff = BACKOFF_MIN_MS;
  if (state.pairs) state.pairs.servers = rtcServers(msg.ice_servers); // fresh TURN credentials for new pairs
  ui.status.textContent = state.step === 'waiting' ? t('Please wait') : ''; // in the call: guest.admitted follows
  // "I am ready" may have been pressed while the socket was down; saying it again changes nothing otherwise.
  if (state.step === 'waiting') send({ type: 'guest.ready', visit_id: msg.visit_id });
}

// -- central's messages -------------------------------------------------------------------------------
const handlers = {
  'guest.welcome': welcome,
  'guest.refused': (msg) => end(msg.reason === 'call_over' ? 'gone' : 'invalid'),
  'guest.admitted': enterCall,
  'guest.removed': () => end('removed'),
  'visit.ended': () => end('over'),
  'call.failed': () => end('over'),
  'call.participant_joined': (msg) => { addTile(msg.peer, msg); state.pairs?.joined(msg); },
  'call.participant_left': (msg) => state.pairs?.left(msg.peer),
  'rtc.offer': (msg) => state.pairs?.offer(msg),
  'rtc.answer': (msg) => state.pairs?.answer(msg),
  'rtc.candidate': (msg) => state.pairs?.candidate(msg),
  error: (msg) => console.warn('central refused a message', msg.code, msg.detail),
  pong: () => {},
};

function onMessage(msg) {
  if (!state.ended) handlers[msg.type]?.(msg);
}

// -- camera and microphone ----------------------------------------------------------------------------
async function checkDevices() {
  const { role, label, department } = state.welcome;
  ui.joiningAs.textContent = t('You join as: %(who)s · %(office)s', { who: label || t(ROLES[role]), office: department });
  show('check');
  let note = '';
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  } catch {
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      note = t('No camera could be used: the others will only hear you.');
    } catch {
      note = t('Neither camera nor microphone could be used. Allow them in the browser (the symbol in the address bar), or use another device.');
    }
  }
  if (state.ended) { state.stream?.getTracks().forEach((track) => track.stop()); return; }
  ui.deviceNote.textContent = note;
  ui.deviceNote.hidden = !note;
  ui.preview.srcObject = state.stream;
  ui.preview.hidden = !state.stream?.getVideoTracks().length;
  ui.ready.disabled = !state.stream;
  state.stopMeter = levelMeter(state.stream, ui.level); // nothing without a microphone
  ui.ready.focus();
}

ui.ready.addEventListener('click', () => {
  send({ type: 'guest.ready', visit_id: state.welcome.visit_id });
  show('waiting');
  ui.status.textContent = t('Please wait');
});

// -- the call -----------------------------------------------------------------------------------------
function enterCall() {
  if (state.pairs) return; // back after a lost connection: the pairs stay; central restarts each with us
  const { visit_id: visitId, ice_servers: iceServers } = state.welcome;
  state.stopMeter();
  state.pairs = new Pairs({
    visitId, iceServers, send,
    onRemote: (peer, info, stream) => { tileOf(peer, info).querySelector('video').srcObject = stream; },
    onGone: (peer) => tileOf(peer)?.remove(),
  });
  state.pairs.setStream(state.stream);
  ui.ownVideo.srcObject = state.stream;
  ui.status.textContent = '';
  show('call');
  renderButtons();
  ui.title.focus();
}

function tileOf(peer, info = null) {
  return ui.tiles.querySelector(`[data-peer="${CSS.escape(peer)}"]`) ?? (info ? addTile(peer, info) : null);
}

function addTile(peer, { role, label }) {
  let tile = ui.tiles.querySelector(`[data-peer="${CSS.escape(peer)}"]`);
  if (!tile) {
    tile = $('#tpl-tile').content.firstElementChild.cloneNode(true);
    tile.dataset.peer = peer;
    tile.dataset.role = role;
    ui.tiles.append(tile);
  }
  const roleName = t(ROLES[role] ?? ROLES.colleague);
  tile.querySelector('figcaption').textContent = label ? `${label} (${roleName})` : roleName;
  tile.querySelector('video').setAttribute('aria-label', tile.querySelector('figcaption').textContent);
  return tile;
}

const tracksOf = (kind) => state.stream?.getTracks().filter((track) => track.kind === kind) ?? [];

function renderButtons() {
  const [audio] = tracksOf('audio'), [video] = tracksOf('video');
  ui.mute.textContent = t(audio && !audio.enabled ? 'Unmute' : 'Mute');
  ui.mute.disabled = !audio;
  ui.camera.textContent = t(video && !video.enabled ? 'Camera on' : 'Camera off');
  ui.camera.disabled = !video;
}

for (const [button, kind] of [[ui.mute, 'audio'], [ui.camera, 'video']]) {
  button.addEventListener('click', () => { // enabled=false sends silence/black: no renegotiation needed
    for (const track of tracksOf(kind)) track.enabled = !track.enabled;
    renderButtons();
  });
}

// Closing the tab leaves at once: central need not wait for a guest who will not come back.
addEventListener('pagehide', () => {
  if (state.welcome && !state.ended) send({ type: 'guest.leave', visit_id: state.welcome.visit_id });
});

for (const button of document.querySelectorAll('.leave')) {
  button.addEventListener('click', () => {
    if (state.welcome) send({ type: 'guest.leave', visit_id: state.welcome.visit_id });
    end('left');
  });
}

// Texts only named above (the extractor needs them spelled out once).
N_('Unmute'); N_('Camera on'); N_('Mute'); N_('Camera off');
