/* A visit from home, step by step: the notice, the camera and microphone check, the waiting room, the
 * call, the end. Speaks the citizen side of the kiosk protocol over /ws/visit (protocol/home.py); central
 * renders the page in the citizen's language (central/web/home.py), and t() translates what this adds. */
import { N_, t } from '/static/citizen/strings.js';
import * as call from './call.js';
import * as link from './connection.js';
import { levelMeter } from '/static/devices/level_meter.js';
import { openDevices, stopDevices } from './devices.js';

const $ = (id) => document.getElementById(id);
const root = $('visit');
const STEPS = ['notice', 'check', 'nodevices', 'waiting', 'call', 'ended'];
const CROCKFORD = /^[0-9A-HJKMNP-TV-Z]{8}$/;

const visit = { id: null, token: null, department: root.dataset.department, devices: null, stopMeter: () => {},
  departments: new Map(), started: false, ended: false };
window.amtsklingelHome = { visit, get pc() { return call.observed.pc; }, pcs: call.observed.pcs, marks: call.observed.marks };

function show(step) {
  for (const name of STEPS) $(`step-${name}`).hidden = name !== step;
  root.dataset.step = step;
  // Changing the language reloads the page: only before the visit has begun.
  const chooser = document.querySelector('[data-testid=language-chooser]');
  if (chooser) chooser.hidden = ['waiting', 'call'].includes(step);
  const heading = $(`step-${step}`).querySelector('h2');
  if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: false }); }
}

function problem(text) {
  $('problem').textContent = text;
  $('problem').hidden = !text;
}

/** The booking code from the link (?booking=7K3M-9QX2), normalised, or null. */
function bookingCode() {
  const raw = new URLSearchParams(location.search).get('booking');
  if (!raw) return null;
  const code = raw.toUpperCase().replace(/[-\s]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  return CROCKFORD.test(code) ? code : null;
}

const minutes = (seconds) => Math.max(1, Math.round(seconds / 60));

function showPlace(position, wait) {
  $('place').textContent = position === 1 ? t('You are next.') : t('You are number %(position)s in the queue.', { position });
  $('wait').textContent = wait < 60 ? t('Expected wait: less than a minute')
    : t('Expected wait: about %(minutes)s min', { minutes: minutes(wait) });
}

// -- the steps the citizen goes through ---------------------------------------------------------
async function checkDevices() {
  show('check');
  problem('');
  $('start').disabled = true;
  $('check-status').textContent = t('Your browser asks whether this page may use your camera and microphone.');
  stopDevices(visit.devices);
  visit.stopMeter();
  visit.devices = await openDevices();
  const { problem: missing, stream } = visit.devices;
  if (missing === 'none') { show('nodevices'); return; }
  $('preview').srcObject = stream;
  $('preview').hidden = missing === 'camera';
  $('check-status').textContent = missing === 'camera'
    ? t('No camera: you will talk with sound only. The office will hear you but not see you.')
    : t('Camera and microphone work.');
  root.dataset.media = missing === 'camera' ? 'audio' : 'video';
  visit.stopMeter = levelMeter(stream, $('level'));
  $('start').disabled = false;
}

function requestPlace() {
  problem('');
  const booking = bookingCode();
  const sent = link.send({ type: 'visit.request', department: visit.department,
    language: document.documentElement.lang || 'de', ...(booking && { booking }) });
  if (!sent) problem(t('No connection to the city. Please wait a moment and try again.'));
  else $('start').disabled = true;
}

function finish(reason) {
  visit.ended = true;
  visit.stopMeter();
  call.closeAll();
  stopDevices(visit.devices);
  link.stop();
  const byReason = {
    hangup_kiosk: t('You ended the conversation.'), hangup_staff: t('The office ended the conversation.'),
    cancelled: t('You left the waiting room.'), kiosk_lost: t('The connection was lost for too long.'),
    staff_lost: t('The office lost its connection. Please try again.'),
    device_failed: t('Your microphone stopped working.'), gone: t('The connection was lost for too long.'),
  };
  $('ended-detail').textContent = byReason[reason] || '';
  show('ended');
}

// -- messages from central ------------------------------------------------------------------------
const REFUSED = {
  unknown_department: N_('This office does not take visits from home.'),
  already_waiting: N_('You are already waiting in a waiting room.'),
  online_full: N_('Too many people are waiting online for this office right now. Please try again in a few minutes.'),
  booking_unknown: N_('This booking code is not known for this office, or it has been used already.'),
};

function refused(msg) {
  $('start').disabled = false;
  if (msg.reason === 'closed') {
    problem(t('This office is closed now.') + (msg.next_opening ? ' ' + t('Opens again: %(when)s',
      { when: new Date(msg.next_opening).toLocaleString(document.documentElement.lang, { dateStyle: 'full', timeStyle: 'short' }) }) : ''));
  } else if (msg.reason === 'booking_other_time') {
    problem(t('Your appointment is at another time: %(when)s', { when: new Date(msg.booked_for)
      .toLocaleString(document.documentElement.lang, { dateStyle: 'full', timeStyle: 'short' }) }));
  } else {
    problem(t(REFUSED[msg.reason] || N_('This office cannot take your visit now.')));
  }
}

function takeToken(msg) { if (msg.resume_token) visit.token = msg.resume_token; }

function addGuest(msg) {
  if (!msg.offer || !visit.id) return;
  const tile = document.createElement('figure');
  tile.className = 'tile';
  tile.dataset.peer = msg.peer;
  tile.dataset.testid = 'participant';
  const video = Object.assign(document.createElement('video'), { autoplay: true, playsInline: true });
  video.setAttribute('aria-label', msg.label || t('Interpreter'));
  const caption = document.createElement('figcaption');
  caption.textContent = msg.label || (msg.role === 'interpreter' ? t('Interpreter') : t('Colleague'));
  tile.append(video, caption);
  $('tiles').append(tile);
  call.offer(visit.id, visit.devices, visit.ice, msg.peer, tile).catch((err) => console.error('offer to a guest', err));
}

function onMessage(msg) {
  takeToken(msg);
  switch (msg.type) {
    case 'welcome':
      visit.ice = msg.ice_servers;
      for (const d of msg.departments) visit.departments.set(d.slug, d.name);
      if (visit.id && visit.token) link.send({ type: 'visit.resume', visit_id: visit.id, resume_token: visit.token });
      break;
    case 'visit.queued': case 'visit.transferred':
      visit.id = msg.visit_id;
      visit.department = msg.department;
      call.closeAll();
      $('department-name').textContent = visit.departments.get(msg.department) || root.dataset.name;
      showPlace(msg.position, msg.expected_wait_s);
      show('waiting');
      break;
    case 'visit.position': showPlace(msg.position, msg.expected_wait_s); break;
    case 'visit.resumed':
      if (msg.state === 'waiting') { showPlace(msg.position, msg.expected_wait_s); show('waiting'); }
      break;
    case 'visit.refused': refused(msg); break;
    case 'visit.message': {
      const item = document.createElement('p');
      item.className = 'card message';
      item.textContent = msg.text;
      $('messages').append(item);
      break;
    }
    case 'call.start':
      visit.ice = msg.ice_servers;
      $('self-video').srcObject = visit.devices?.video ? visit.devices.stream : null;
      $('self-video').hidden = !visit.devices?.video;
      $('call-status').textContent = t('Connecting the call…');
      show('call');
      call.offer(visit.id, visit.devices, msg.ice_servers).catch((err) => console.error('offer', err));
      break;
    case 'rtc.answer': call.answer(msg).catch((err) => console.error('answer', err)); break;
    case 'rtc.candidate': call.candidate(msg); break;
    case 'call.failed':
      call.closeAll();
      problem(t('The video connection could not be set up. You are back at the head of the queue.'));
      showPlace(msg.position || 1, msg.expected_wait_s || 0);
      show('waiting');
      break;
    case 'call.participant_joined': addGuest(msg); break;
    case 'call.participant_left': call.close(msg.peer); break;
    case 'visit.ended': finish(msg.reason); break;
    case 'error':
      if (msg.code === 'rate_limited' && msg.ref === 'visit.request') {
        $('start').disabled = false;
        problem(t('Too many attempts. Please wait %(seconds)s seconds and try again.', { seconds: msg.retry_after_s }));
      } else if (msg.code === 'not_your_visit' && msg.ref === 'visit.resume') {
        finish('gone');
      } else console.info('central refused %s: %s', msg.ref, msg.detail);
      break;
    default: break;
  }
}

function onStatus(status) {
  if (visit.ended) return;
  problem(status === 'lost' && visit.id ? t('Connection lost. Reconnecting…') : '');
}

call.setUp({
  clerkVideo: $('remote-video'),
  onState: (state) => {
    $('call-status').textContent = state === 'connected' ? '' : state === 'failed'
      ? t('The video connection could not be set up. You are back at the head of the queue.') : $('call-status').textContent;
  },
});
$('notice-ok').addEventListener('click', checkDevices);
$('retry').addEventListener('click', checkDevices);
$('start').addEventListener('click', () => { visit.stopMeter(); requestPlace(); });
$('cancel').addEventListener('click', () => visit.id && link.send({ type: 'visit.cancel', visit_id: visit.id }));
$('hangup').addEventListener('click', () => visit.id && link.send({ type: 'visit.hangup', visit_id: visit.id }));
for (const [button, kind, on, off] of [['mute', 'audio', N_('Mute microphone'), N_('Unmute microphone')],
  ['camera', 'video', N_('Camera off'), N_('Camera on')]]) {
  $(button).addEventListener('click', () => {
    const now = call.toggle(kind);
    $(button).textContent = t(now ? on : off);
    $(button).setAttribute('aria-pressed', String(!now));
  });
}
if (new URLSearchParams(location.search).get('booking') && !bookingCode()) {
  problem(t('The booking code in this link is not valid. You can still visit without it.'));
}
// Leaving the page (closing the tab, following a link) leaves the waiting room or ends the call at once,
// instead of holding a place until central's grace runs out.
addEventListener('pagehide', () => {
  if (!visit.id || visit.ended) return;
  link.send({ type: root.dataset.step === 'call' ? 'visit.hangup' : 'visit.cancel', visit_id: visit.id });
});
link.start({ onMessage, onStatus });
