/* Kiosk page: draws the controller's View (appliance/controller/view.py) and sends actions back.
 * The page decides nothing: every view arrives over /events, every touch or key goes to /action.
 * In the demo the keyboard is the call button: Space or Enter, held for a second = long press.
 * The CSP forbids inline code, so the first catalogue comes in the #boot JSON element. */
import { attach } from './clerk-video.js';
import { attach as attachSelfView, stats as selfViewStats } from './self-view.js';
import { showParticipants, stats as participantStats } from './participants.js';
import { createBookingScreen } from './booking.js';

const BOOT = JSON.parse(document.getElementById('boot').textContent);
const LONG_PRESS_MS = 1000;
const SELFTEST_HOLD_MS = 5000; // as the call button: held this long on the idle screen, the self-test starts
const RECONNECT_MS = 3000;
const CALL_KEYS = new Set([' ', 'Enter', 'Spacebar']);
const MANY_OFFICES = 5; // more than this on the idle screen: names only, grouped open / closed
const APPOINTMENT = ':appointment'; // appliance/controller/view.py: the choice after the open offices

const catalogues = new Map([[BOOT.catalogue.language, BOOT.catalogue]]);
let catalogue = BOOT.catalogue;

// Tests watch renders here; nothing else reads it.
window.amtsklingel = { renders: 0, view: null, selfView: selfViewStats, participants: participantStats };

const $ = (selector, root = document) => root.querySelector(selector);
const ui = {};
for (const node of document.querySelectorAll('body [id]')) ui[node.id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = node;

/** Marks a msgid for the catalogue where it is translated later, by t(). */
const N_ = (msgid) => msgid;

/** Translation of an English msgid; "%(name)s" is replaced from vars. */
function t(key, vars = {}) {
  return (catalogue.messages[key] || key).replace(/%\((\w+)\)s/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

function applyStrings(root = document) {
  for (const node of root.querySelectorAll('[data-t]')) node.textContent = t(node.dataset.t);
  for (const node of root.querySelectorAll('[data-t-label]')) node.setAttribute('aria-label', t(node.dataset.tLabel));
  for (const node of root.querySelectorAll('[data-t-alt]')) node.alt = t(node.dataset.tAlt);
}

async function useLanguage(code) {
  if (code === catalogue.language) return;
  let next = catalogues.get(code);
  if (!next) {
    try {
      const res = await fetch(`/i18n/${encodeURIComponent(code)}.json`);
      if (!res.ok) return; // not shipped: stay in the language we have
      next = await res.json();
      catalogues.set(code, next);
    } catch { return; }
  }
  catalogue = next;
  document.documentElement.lang = next.language;
  document.documentElement.dir = next.dir;
  applyStrings();
}

// == formatting in the citizen's language ====================================================

const lang = () => catalogue.language;
const number = (n) => new Intl.NumberFormat(lang()).format(n);

function duration(seconds) {
  let minutes = Math.max(1, Math.round(seconds / 60));
  if (minutes >= 90) return new Intl.NumberFormat(lang(), { style: 'unit', unit: 'hour', unitDisplay: 'long' }).format(Math.round(minutes / 60));
  if (minutes > 15) minutes = Math.round(minutes / 5) * 5; // "about 35 minutes", not "about 37"
  return new Intl.NumberFormat(lang(), { style: 'unit', unit: 'minute', unitDisplay: 'long' }).format(minutes);
}

function opening(iso, { short = false } = {}) {
  const date = iso ? new Date(iso) : null;
  if (!date || Number.isNaN(date.getTime())) return null;
  const options = short ? { weekday: 'short', hour: '2-digit', minute: '2-digit' }
    : { weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(lang(), options).format(date);
}

// Names from central keep their own direction inside a sentence (Unicode first-strong isolates), so
// "Bürgerbüro" in an Arabic sentence neither turns around nor drags the punctuation with it.
const isolate = (text) => `\u2068${text}\u2069`;
// Office names contain "und"/"and" themselves: a middle dot separates them more clearly than a list.
const listOf = (names) => names.map(isolate).join(' · ');
const departmentName = (view, slug) => view.departments.find((d) => d.slug === slug)?.name ?? slug ?? '';

function show(node, text) { // a text, or hide the element when there is none
  node.hidden = !text;
  node.textContent = text || '';
}

// == the screens ==========================================================================

const NOTICES = {
  closed: N_('This office is closed right now.'),
  unknown_department: N_('This office cannot be reached from here.'),
  already_waiting: N_('This kiosk is already in a waiting room. Please try again in a moment.'),
  unreachable: N_('The town hall could not be reached. Please try again in a moment.'),
};
const REFUSED = N_('Your request could not be accepted. Please try again later.'); // any other refusal
const ENDED = {
  hangup_staff: N_('The office has ended the call.'),
  kiosk_lost: N_('The connection was lost.'),
  staff_lost: N_('The connection was lost.'),
  device_failed: N_('The microphone stopped working, so the call had to end. Please tell the staff of this building.'),
};
const CALL_NOTICES = {
  camera_failed: N_('Your camera stopped working. The clerk can still hear you.'),
  speaker_failed: N_('The loudspeaker stopped working, so you cannot hear the clerk. The clerk can still see and hear you.'),
  video_rejected: N_('The clerk cannot see you and you cannot see the clerk. You can still hear each other.'),
};
// The self-test: each item's name, and what a failure means, in plain words for the person installing the unit.
const SELFTEST_ITEMS = {
  camera: N_('Camera'), microphone: N_('Microphone'), sound_loop: N_('Speaker (test tone)'), button: N_('Call button'),
  network: N_('Network'), central: N_('Connection to the town hall'), clock: N_('Clock'), enrolment: N_('Registration'),
};
const SELFTEST_STATES = {
  checking: N_('Checking…'), waiting: N_('Waiting for the button…'), pass: N_('Works'), fail: N_('Does not work'),
  skipped: N_('Not checked'),
};
const SELFTEST_FAULTS = {
  camera_failed: N_('No picture. Check the camera cable.'),
  microphone_failed: N_('No sound. Check the microphone plug.'),
  microphone_silent: N_('The microphone hears nothing at all. Check the microphone plug.'),
  speaker_failed: N_('The speaker does not play. Check its cable.'),
  tone_not_heard: N_('The test tone was not heard. Check the volume and that nothing covers speaker or microphone.'),
  button_not_pressed: N_('No press arrived. Check the cable of the call button.'),
  network_down: N_('No network. Check the network cable.'),
  central_unreachable: N_('The town hall server does not answer.'),
  clock_unsynchronised: N_('The time is not set yet. It needs the network.'),
  not_enrolled: N_('This unit is not registered yet.'),
};
const FAULTS = {
  camera: N_('The camera is not working.'),
  microphone: N_('The microphone is not working.'),
  speaker: N_('The loudspeaker is not working.'),
  replaced: N_("This unit's identity is in use by another unit. Please tell the city's IT."),
};
const CALL_FAILED = N_('The connection could not be set up. You keep your place; a clerk will try again.');

const booking = createBookingScreen({ t, ui, post, lang, departmentName });

const screens = {
  idle(view) {
    ui.idleOffline.hidden = view.online;
    ui.appointmentButton.hidden = !view.online || !view.departments.some((d) => d.bookable);
    // An update's restart (appliance/update/) or a notice takes the lead's place; a notice for a citizen comes first.
    const restart = !view.notice && view.restart_at && new Date(view.restart_at);
    ui.idleLead.hidden = Boolean(restart || view.notice); // the notice, or the restart, takes the lead's place
    show(ui.idleRestart, restart && !Number.isNaN(restart.getTime()) && t(
      'This kiosk restarts at %(time)s for an update. It is back in a few minutes.',
      { time: new Intl.DateTimeFormat(lang(), { hour: '2-digit', minute: '2-digit' }).format(restart) }));
    const notice = view.notice ? t(NOTICES[view.notice] || REFUSED) : '';
    ui.idleNotice.hidden = !notice;
    ui.idleNoticeText.textContent = notice;
    const when = view.notice === 'closed' ? opening(view.next_opening) : null;
    show(ui.idleNoticeDetail, when && t('Next opening: %(when)s', { when }));
    const many = view.departments.length > MANY_OFFICES;
    const open = view.departments.filter((d) => d.open);
    const closed = view.departments.filter((d) => !d.open).map((d) => d.name);
    ui.idle.classList.toggle('many', many);
    ui.offices.hidden = !view.departments.length; // not connected yet: nothing to list
    ui.openNow.hidden = !many || !open.length;
    ui.officeList.replaceChildren(...(many ? open.map((d) => officeName(d)) : view.departments.map((d) => office(d))));
    show(ui.idleClosedNow, many && closed.length && t('Closed now: %(offices)s', { offices: listOf(closed) }));
    ui.allClosed.hidden = !view.online || !view.departments.length || open.length > 0;
  },
  choosing(view) {
    const open = view.departments.filter((d) => d.open);
    ui.tiles.replaceChildren(...open.map((d) => tile(d, d.slug === view.selected)));
    ui.appointmentTile.setAttribute('aria-pressed', String(view.selected === APPOINTMENT));
    ui.appointmentTile.hidden = !view.departments.some((d) => d.bookable);
    const closed = view.departments.filter((d) => !d.open).map((d) => d.name);
    show(ui.closedNow, closed.length && t('Closed now: %(offices)s', { offices: listOf(closed) }));
  },
  consent(view) {
    ui.consentOffice.textContent = departmentName(view, view.selected);
  },
  waiting(view) {
    ui.position.textContent = view.position == null ? t('You are in the waiting room.')
      : view.position <= 1 ? t('You are next.') : t('You are number %(position)s', { position: number(view.position) });
    show(ui.expectedWait, view.expected_wait_s == null ? t('You will be called as soon as possible.')
      : view.expected_wait_s < 60 ? t('Expected wait: less than a minute')
        : t('Expected wait: about %(duration)s', { duration: duration(view.expected_wait_s) }));
    ui.waitingOffice.textContent = departmentName(view, view.selected);
    show(ui.waitingNotice, view.notice === 'transferred'
      ? t('You have been passed to %(department)s. Your place in line is kept.', { department: isolate(departmentName(view, view.selected)) })
      : view.notice === 'call_failed' && t(CALL_FAILED));
    ui.clerkMessage.hidden = !view.message;
    ui.clerkMessageText.textContent = view.message || '';
    ui.waitingOffline.hidden = view.online;
  },
  in_call(view) {
    show(ui.callNotice, CALL_NOTICES[view.notice] && t(CALL_NOTICES[view.notice]));
    indicator(ui.microphone, ui.microphoneText, view.microphone_on, N_('Microphone on'), N_('Microphone off'));
    indicator(ui.camera, ui.cameraText, view.camera_on, N_('Camera on'), N_('Camera off'));
    const others = view.participants || [];
    ui.clerkRole.hidden = others.length === 0; // with guests on screen, the large picture says who it is
    showParticipants(ui.participants, others, t);
  },
  ended(view) {
    show(ui.endedReason, ENDED[view.ended_reason] && t(ENDED[view.ended_reason]));
  },
  fault(view) {
    show(ui.faultDetail, FAULTS[view.fault] && t(FAULTS[view.fault]));
  },
  selftest(view) {
    const test = view.selftest || { items: [], level: 0, asking: null, done: false };
    ui.selftestMeterBar.style.inlineSize = `${Math.round((test.level || 0) * 100)}%`;
    ui.selftestAsk.hidden = test.asking !== 'press';
    ui.selftestDone.hidden = !test.done;
    ui.selftestItems.replaceChildren(...test.items.map(selftestItem));
  },
  booking: (view) => booking.render(view),
  enrol(view) {
    const enrol = view.enrol || {};
    ui.enrolClaim.hidden = !enrol.code;
    ui.enrolConnecting.hidden = Boolean(enrol.code);
    ui.enrolUnreachable.hidden = Boolean(enrol.code) || !enrol.unreachable;
    ui.enrolCode.textContent = enrol.code || '';
    if (!enrol.qr) ui.enrolQr.removeAttribute('src');
    else if (ui.enrolQr.getAttribute('src') !== enrol.qr) ui.enrolQr.src = enrol.qr;
    ui.enrolSerial.textContent = enrol.serial || '';
  },
};

function selftestItem(item) {
  const node = document.createElement('li');
  node.className = 'selftest-item';
  node.dataset.item = item.item;
  node.dataset.state = item.state;
  const name = document.createElement('span');
  name.className = 'selftest-name';
  name.textContent = t(SELFTEST_ITEMS[item.item] || item.item);
  const state = document.createElement('span');
  state.className = 'selftest-state';
  state.textContent = t(SELFTEST_STATES[item.state] || item.state);
  node.append(name, state);
  // Which camera, microphone or speaker worked: the installer checks it is the one fitted. With a fault the
  // hint says what to do instead (both would not fit the 7" display).
  if (item.device && item.state === 'pass') {
    const device = document.createElement('span');
    device.className = 'selftest-device';
    device.dir = 'auto';
    device.textContent = item.device;
    node.append(device);
  }
  if (item.state === 'fail' && SELFTEST_FAULTS[item.fault]) {
    const why = document.createElement('span');
    why.className = 'selftest-why';
    why.textContent = t(SELFTEST_FAULTS[item.fault]);
    node.append(why);
  }
  return node;
}

function officeName(d, tag = 'li') {
  const node = document.createElement(tag);
  node.className = 'office-name';
  node.dir = 'auto';
  node.textContent = d.name;
  return node;
}

function office(d) {
  const item = document.createElement('li');
  item.className = 'office';
  const status = document.createElement('span');
  status.className = `office-status ${d.open ? 'open' : 'closed'}`;
  const when = d.open ? null : opening(d.next_opening, { short: true });
  status.textContent = d.open ? t('Open now') : when ? `${t('Closed')} · ${t('Next opening: %(when)s', { when })}` : t('Closed');
  item.append(officeName(d, 'span'), status);
  return item;
}

function tile(d, selected) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'tile';
  button.dir = 'auto';
  button.dataset.slug = d.slug;
  button.setAttribute('aria-pressed', String(selected));
  button.textContent = d.name;
  return button;
}

function indicator(node, text, on, onText, offText) {
  node.dataset.on = String(Boolean(on));
  text.textContent = t(on ? onText : offText);
}

let detachVideo = null;
let detachSelfView = null;
let shownScreen = null;
let shownCamera = null; // the canvas the camera's picture goes to: in the call, the self-test, the QR code scan

async function render(view) {
  await useLanguage(view.language);
  const screen = screens[view.screen] ? view.screen : 'fault';
  ui.location.textContent = view.location || '';
  const offered = view.languages || [];
  for (const button of ui.languages.querySelectorAll('[data-language]')) {
    button.setAttribute('aria-pressed', String(button.dataset.language === catalogue.language));
    // Central's settings may offer fewer languages than the unit ships (none listed: all of them).
    button.hidden = offered.length > 0 && !offered.includes(button.dataset.language);
  }
  screens[screen](view);
  if (screen !== shownScreen) {
    for (const section of document.querySelectorAll('.screen')) section.hidden = section.dataset.screen !== screen;
    ui.kiosk.dataset.screen = screen;
    if (shownScreen === 'in_call' && detachVideo) { detachVideo(); detachVideo = null; }
    if (shownScreen === 'in_call') showParticipants(ui.participants, [], t);
    if (screen === 'in_call') detachVideo = attach(ui.clerkVideo, ui.clerkCanvas) || null;
    shownScreen = screen;
  }
  const camera = { in_call: ui.selfViewCanvas, selftest: ui.selftestCanvas }[screen] || booking.cameraCanvas(view);
  if (camera !== shownCamera) {
    if (detachSelfView) { detachSelfView(); detachSelfView = null; }
    if (camera) detachSelfView = attachSelfView(camera, camera === ui.bookingCanvas ? booking.cameraWidth : undefined) || null;
    shownCamera = camera;
  }
  window.amtsklingel.view = view;
  window.amtsklingel.renders += 1;
}

// == input: touches, and the keyboard standing in for the call button ===============================

async function post(action, value = null) {
  try {
    const res = await fetch('/action', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action, value }),
    });
    if (!res.ok) console.error('action refused', action, res.status);
  } catch (err) { console.error('action not sent', action, err); }
}

// A short press or a long press, as the physical button does; the long press fires while still held.
const hold = { timer: null, selftestTimer: null, active: false, fired: false };
function holdStart() {
  if (hold.active) return;
  Object.assign(hold, { active: true, fired: false });
  ui.hold.dataset.active = 'true';
  hold.timer = setTimeout(() => { hold.fired = true; ui.hold.dataset.active = 'done'; post('long_press'); }, LONG_PRESS_MS);
  hold.selftestTimer = setTimeout(() => post('selftest'), SELFTEST_HOLD_MS);
}
function holdEnd(commit) {
  if (!hold.active) return;
  clearTimeout(hold.timer);
  clearTimeout(hold.selftestTimer);
  hold.active = false;
  delete ui.hold.dataset.active;
  if (commit && !hold.fired) post('press');
}

document.addEventListener('keydown', (event) => {
  if (!CALL_KEYS.has(event.key) || event.ctrlKey || event.altKey || event.metaKey) return;
  event.preventDefault(); // Space and Enter are the call button, never a click on the focused control
  if (!event.repeat) holdStart();
});
document.addEventListener('keyup', (event) => {
  if (!CALL_KEYS.has(event.key)) return;
  event.preventDefault();
  holdEnd(true);
});
window.addEventListener('blur', () => holdEnd(false));

ui.startButton.addEventListener('pointerdown', (event) => { ui.startButton.setPointerCapture(event.pointerId); holdStart(); });
ui.startButton.addEventListener('pointerup', () => holdEnd(true));
ui.startButton.addEventListener('pointercancel', () => holdEnd(false));
ui.startButton.addEventListener('click', (event) => { if (event.detail === 0) post('press'); }); // screen readers

document.addEventListener('click', (event) => {
  const button = event.target.closest('button');
  if (!button) return;
  if (button.dataset.language) post('language', button.dataset.language);
  else if (button.dataset.slug) post('choose', button.dataset.slug);
  else if (button.dataset.action) post(button.dataset.action);
});
// Long touches must not open menus or drag pictures on a kiosk.
document.addEventListener('contextmenu', (event) => event.preventDefault());
document.addEventListener('dragstart', (event) => event.preventDefault());

// == views from the controller ===========================================================

let rendering = Promise.resolve();
function connect() {
  const source = new EventSource('/events');
  source.addEventListener('message', (event) => {
    const view = JSON.parse(event.data);
    rendering = rendering.then(() => render(view)).catch((err) => console.error('cannot show view', err));
  });
  // EventSource retries by itself after a network error, but gives up on an HTTP error (service restarting).
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, RECONNECT_MS);
  });
}

applyStrings();
connect();
