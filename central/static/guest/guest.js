/* The guest's page: open the clerk's one-time link, check camera and microphone, wait to be let in, then one
 * tile per participant (protocol/guests.py). The link's secret is in the fragment, so no request carries it;
 * it is said once, on /ws/guest, when the guest starts, and then taken out of the address bar. */
import { N_, pageLanguage, t } from '/static/citizen/strings.js';
import { levelMeter } from '/static/devices/level_meter.js';
import { Pairs } from '/static/mesh/pairs.js';

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
};
const SECRET = /^[A-Za-z0-9_-]{22,64}$/;

const state = { socket: null, welcome: null, stream: null, pairs: null, ended: false, stopMeter: () => {} };
window.amtsklingel = { state }; // for the end-to-end tests: the pairs and their connections

function show(step) {
  for (const section of document.querySelectorAll('[data-step]')) section.hidden = section.dataset.step !== step;
}

function end(why) {
  if (state.ended) return;
  state.ended = true;
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
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/ws/guest`);
  state.socket = socket;
  socket.addEventListener('open', () => send({ type: 'guest.hello', link: secret, language: pageLanguage() }));
  socket.addEventListener('message', (event) => onMessage(JSON.parse(event.data)));
  socket.addEventListener('close', () => end(state.welcome ? 'lost' : 'invalid'));
});

// -- central's messages -------------------------------------------------------------------------------
const handlers = {
  'guest.welcome': (msg) => { state.welcome = msg; checkDevices(); },
  'guest.refused': () => end('invalid'),
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
  handlers[msg.type]?.(msg);
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

for (const button of document.querySelectorAll('.leave')) {
  button.addEventListener('click', () => {
    if (state.welcome) send({ type: 'guest.leave', visit_id: state.welcome.visit_id });
    end('left');
  });
}

// Texts only named above (the extractor needs them spelled out once).
N_('Unmute'); N_('Camera on'); N_('Mute'); N_('Camera off');
