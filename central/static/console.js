/* Staff console: live waiting list, arrival alerts and the clerk's side of the video call.
 * Speaks only to /ws/staff (protocol/messages.py: STAFF_TO_CENTRAL out, CENTRAL_TO_STAFF in).
 * The CSP forbids inline code, so texts come from #strings and markup from <template>s. */
'use strict';

const STRINGS = JSON.parse(document.getElementById('strings').textContent);

/** Translation of an English msgid; "%(name)s" is replaced from vars. */
function t(key, vars = {}) {
  return (STRINGS[key] ?? key).replace(/%\((\w+)\)s/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

const $ = (selector, root = document) => root.querySelector(selector);
const PING_MS = 20000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 15000;
const END_REASONS = {
  hangup_kiosk: 'The citizen hung up.', kiosk_lost: 'The connection to the kiosk was lost.',
  staff_lost: 'The connection to the console was lost.', transferred: 'The visit was transferred.',
};
const ERRORS = {
  already_taken: 'Another clerk has already picked up this visit.', queue_empty: 'Nobody is waiting in this department.',
  closed: 'This department is closed now.', rate_limited: 'Too many messages to this citizen.',
};

// Automated tests observe arrivals and the current peer connection here.
window.amtsklingel = { alerts: [], pc: null };

const state = {
  ws: null, backoff: BACKOFF_MIN_MS, retryTimer: null, lastSeen: 0,
  replaced: false,        // another window took the console over: do not fight it by reconnecting
  hadSnapshot: false,
  presence: 'available',
  departments: new Map(), // slug -> {slug, name, open, waiting: Map(visit_id -> WaitingVisit)}
  targets: [],            // DepartmentInfo of every department, for transfers
  sections: new Map(),    // slug -> <section>
  rows: new Map(),        // visit_id -> <li>; reused so typing and focus survive list updates
  call: null,             // {visit, pc, stream, remote, chain, early}
  ownTransfers: new Set(), // visit ids this console transferred, so their arrival elsewhere does not chime
  clockSkew: 0,           // server time minus this PC's time, seconds
};

// Every element with an id in console.html, by camelCase id: ui.bannerText is #banner-text.
const ui = {};
for (const node of document.querySelectorAll('main [id]')) ui[node.id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = node;
const BASE_TITLE = document.title;

function applyStrings(root) {
  for (const node of root.querySelectorAll('[data-t]')) node.textContent = t(node.dataset.t);
  for (const node of root.querySelectorAll('[data-t-label]')) node.setAttribute('aria-label', t(node.dataset.tLabel));
  return root;
}
const cloneTemplate = (id) => applyStrings(document.getElementById(id).content.firstElementChild.cloneNode(true));
function languageName(code) { // "tr" -> "Türkisch" in the page's language
  try { return new Intl.DisplayNames([document.documentElement.lang || 'de'], { type: 'language' }).of(code); } catch { return code; }
}

function formatWait(seconds) {
  const s = Math.max(0, Math.floor(seconds)); // a clerk PC clock ahead of central must not show "-0:03"
  const pad = (n) => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

function announce(text) { // clearing first makes screen readers repeat an identical announcement
  ui.announcer.textContent = '';
  setTimeout(() => { ui.announcer.textContent = text; }, 50);
}
function showError(text) { ui.bannerText.textContent = text; ui.banner.hidden = false; }

// == connection ===============================================================

function connect() {
  clearTimeout(state.retryTimer);
  state.replaced = false;
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/staff`);
  let opened = false;
  state.ws = ws;
  setConnection('connecting');
  ws.addEventListener('open', () => { opened = true; state.lastSeen = Date.now(); setConnection('connected'); });
  ws.addEventListener('message', (event) => {
    state.lastSeen = Date.now();
    try {
      const msg = JSON.parse(event.data);
      handlers[msg.type]?.(msg);
    } catch (err) { console.error('cannot handle', event.data.slice(0, 80), err); }
  });
  ws.addEventListener('close', () => connectionLost(ws, opened));
}

function connectionLost(ws, opened) {
  if (state.ws !== ws) return; // a socket we already gave up on
  state.ws = null;
  if (state.replaced) { setConnection('replaced'); return; }
  setConnection('lost');
  if (!opened) checkSession();
  // Jitter, so that after a central restart not every console knocks at the same moment.
  const delay = Math.min(BACKOFF_MAX_MS, state.backoff * (0.8 + Math.random() * 0.4));
  state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX_MS);
  state.retryTimer = setTimeout(connect, delay);
}

// A refused handshake (expired session) looks like any network error; ask the page itself.
async function checkSession() {
  try {
    const res = await fetch('/console', { method: 'HEAD', redirect: 'manual', cache: 'no-store' });
    if (res.type === 'opaqueredirect') location.assign('/login?next=/console');
  } catch { /* offline: keep retrying */ }
}
function setConnection(status) {
  ui.connection.dataset.state = status;
  ui.connection.textContent = t({ connecting: 'Connecting…', connected: 'Connected',
    lost: 'Connection lost. Reconnecting…', replaced: 'The console was opened in another window.' }[status]);
  ui.reclaim.hidden = status !== 'replaced';
  updateButtons();
}

function send(msg, { quiet = false } = {}) {
  if (state.ws?.readyState === WebSocket.OPEN) { state.ws.send(JSON.stringify(msg)); return true; }
  if (!quiet) showError(t('Not connected. Try again in a moment.'));
  return false;
}

const handlers = {
  'console.snapshot': onSnapshot,
  'queue.joined': (msg) => {
    addVisit(msg.visit);
    // A visit this clerk just transferred into another of their departments is no news to them.
    if (!(msg.reason === 'transferred' && state.ownTransfers.delete(msg.visit.visit_id))) alertArrival(msg.visit);
  },
  'queue.left': (msg) => removeVisit(msg.visit_id, msg.department),
  'call.assigned': (msg) => startCall(msg.visit, msg.ice_servers),
  'presence.changed': (msg) => setPresence(msg.presence),
  'rtc.offer': onOffer,
  'rtc.candidate': onCandidate,
  'visit.ended': (msg) => endCall(msg.visit_id, msg.reason),
  error: onError,
  pong: () => {},
};

function onError(msg) {
  // Central sends this before closing our socket when the console is opened elsewhere; reconnecting
  // would take it back and start a ping-pong between the two windows.
  if (msg.code === 'replaced') {
    state.replaced = true;
    if (state.call) teardown(); // the call belongs to the other window now; free camera and microphone
    return;
  }
  if (msg.ref === 'visit.hangup' && msg.code === 'not_your_visit') return; // that call is over anyway
  showError(ERRORS[msg.code] ? t(ERRORS[msg.code]) : t('Something went wrong: %(detail)s', { detail: msg.detail }));
}

// == waiting list =============================================================

function onSnapshot(msg) {
  state.clockSkew = msg.server_time - Date.now() / 1000;
  state.backoff = BACKOFF_MIN_MS; // reset only now: a socket that opens and closes at once must still back off
  const known = new Set(state.rows.keys());
  state.targets = msg.transfer_targets;
  state.departments = new Map(msg.departments.map((d) => [d.slug,
    { slug: d.slug, name: d.name, open: d.open, waiting: new Map(d.waiting.map((v) => [v.visit_id, v])) }]));
  const current = new Set(msg.departments.flatMap((d) => d.waiting.map((v) => v.visit_id)));
  for (const id of known) if (!current.has(id)) state.rows.delete(id);
  for (const row of state.rows.values()) fillTransfer($('select', row), row.dataset.department);
  renderDepartments();
  // Arrivals while we were offline deserve the same alert as live ones (not on the first load).
  if (state.hadSnapshot) for (const d of msg.departments) for (const v of d.waiting) if (!known.has(v.visit_id)) alertArrival(v);
  state.hadSnapshot = true;
  setPresence(msg.presence);
  // Central does not count us in the call any more (it restarted, or the call was not kept over our reconnect):
  // hang up, so the kiosk is not left in a call nobody will end, and return to the list.
  if (state.call && msg.presence !== 'in_call') {
    send({ type: 'visit.hangup', visit_id: state.call.visit.visit_id });
    endCall(state.call.visit.visit_id, null);
  }
  if (state.call) fillTransfer(ui.callTransfer, state.call.visit.department);
}

// Put nodes into container in this order, moving only those out of place so focus and typing survive.
function placeInOrder(container, nodes) {
  nodes.forEach((node, i) => {
    if (container.children[i] !== node) container.insertBefore(node, container.children[i] ?? null);
  });
  while (container.children.length > nodes.length) container.lastElementChild.remove();
}

function renderDepartments() {
  for (const slug of state.sections.keys()) if (!state.departments.has(slug)) state.sections.delete(slug);
  placeInOrder(ui.departments, [...state.departments.values()].map((dept) => {
    let section = state.sections.get(dept.slug);
    if (!section) {
      section = cloneTemplate('tpl-department');
      section.dataset.department = dept.slug;
      $('.pickup-next', section).addEventListener('click', () => send({ type: 'visit.pickup', department: dept.slug }));
      state.sections.set(dept.slug, section);
    }
    $('.department-name', section).textContent = dept.name;
    $('.department-open', section).textContent = t(dept.open ? 'Open' : 'Closed');
    $('.department-open', section).dataset.open = dept.open;
    return section;
  }));
  for (const slug of state.departments.keys()) renderQueue(slug);
}

function renderQueue(slug) {
  const dept = state.departments.get(slug), section = state.sections.get(slug);
  const visits = [...dept.waiting.values()].sort((a, b) => a.arrived_at - b.arrived_at);
  placeInOrder($('.visits', section), visits.map(rowFor));
  $('.empty', section).hidden = visits.length > 0;
  $('.department-count', section).textContent = visits.length;
  const total = [...state.departments.values()].reduce((sum, d) => sum + d.waiting.size, 0);
  ui.queueCount.textContent = total;
  document.title = total ? `(${total}) ${BASE_TITLE}` : BASE_TITLE;
  updateButtons();
}

function rowFor(visit) {
  const id = visit.visit_id;
  let row = state.rows.get(id);
  if (row && row.dataset.department !== visit.department) { // moved while we were offline
    row.dataset.department = visit.department;
    fillTransfer($('select', row), visit.department);
  }
  if (row) return row;
  row = cloneTemplate('tpl-visit');
  Object.assign(row.dataset, { visitId: id, department: visit.department });
  Object.assign($('.visit-where', row), { textContent: visit.kiosk_location, id: `where-${id}` });
  $('.visit-language', row).textContent = languageName(visit.language);
  $('.visit-waited', row).dataset.since = visit.arrived_at;
  tick(row, Date.now() / 1000 + state.clockSkew);
  // Every row has a "Pick up" button: tie each to its kiosk for screen readers.
  $('.pickup', row).setAttribute('aria-describedby', `where-${id}`);
  $('.pickup', row).addEventListener('click', () => send({ type: 'visit.pickup', visit_id: id }));
  fillTransfer($('select', row), visit.department);
  wireTransfer($('select', row), () => id);
  const input = $('input', row);
  input.value = t('I will be with you in 2 minutes.');
  $('form', row).addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text && send({ type: 'visit.message', visit_id: id, text })) announce(t('Message sent.'));
  });
  state.rows.set(id, row);
  return row;
}

function tick(row, now) {
  const waited = $('.visit-waited', row);
  waited.textContent = t('waiting for %(minutes)s min', { minutes: formatWait(now - Number(waited.dataset.since)) });
}

function addVisit(visit) {
  state.departments.get(visit.department)?.waiting.set(visit.visit_id, visit);
  if (state.departments.has(visit.department)) renderQueue(visit.department);
}

function removeVisit(visitId, slug) {
  const row = state.rows.get(visitId), dept = state.departments.get(slug);
  const hadFocus = row?.contains(document.activeElement);
  state.rows.delete(visitId);
  dept?.waiting.delete(visitId);
  if (dept) renderQueue(slug); else row?.remove();
  if (hadFocus) $('.department-name', state.sections.get(slug) ?? document)?.focus(); // not lost on <body>
}

function fillTransfer(select, fromDepartment) {
  select.replaceChildren(new Option(t('Transfer to…'), ''));
  for (const d of state.targets) {
    if (d.slug === fromDepartment) continue;
    const option = new Option(d.open ? d.name : `${d.name} – ${t('Closed')}`, d.slug);
    option.disabled = !d.open; // central refuses closed departments anyway
    select.add(option);
  }
}

// Chrome changes a closed <select> on arrow keys and fires "change" each time, which would transfer
// the citizen to the first department passed. So keyboard users browse with the arrows and confirm
// with Enter, while a choice made with the mouse (or in the opened list) transfers at once.
function wireTransfer(select, visitId) {
  let browsing = false;
  const transfer = () => {
    if (select.value && send({ type: 'visit.transfer', visit_id: visitId(), department: select.value })) {
      state.ownTransfers.add(visitId());
      announce(t('Transferred'));
    }
    select.value = '';
    browsing = false;
  };
  select.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { event.preventDefault(); transfer(); }
    else if (event.key === ' ' || event.key === 'F4' || event.altKey) browsing = false; // opens the list
    else if (/^(Arrow\w+|Home|End|Page\w+|\S)$/u.test(event.key)) browsing = true;
  });
  select.addEventListener('change', () => { if (!browsing) transfer(); });
  select.addEventListener('blur', () => { if (browsing) select.value = ''; browsing = false; });
}

function updateButtons() {
  const blocked = state.ws?.readyState !== WebSocket.OPEN || !!state.call; // central refuses a second call
  for (const [slug, section] of state.sections) {
    $('.pickup-next', section).disabled = blocked || !state.departments.get(slug)?.waiting.size;
  }
  for (const row of state.rows.values()) $('.pickup', row).disabled = blocked;
}

// == presence and alerts ======================================================

function setPresence(presence) {
  state.presence = ui.presence.value = presence;
  ui.presence.disabled = presence === 'in_call'; // central refuses presence changes during a call
}

ui.presence.addEventListener('change', () => send({ type: 'presence.set', status: ui.presence.value }) || setPresence(state.presence));

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

function alertArrival(visit) {
  window.amtsklingel.alerts.push({ visit_id: visit.visit_id, at: Date.now() });
  const where = [visit.kiosk_location, state.departments.get(visit.department)?.name].filter(Boolean).join(' · ');
  announce(`${t('A citizen is waiting')}: ${where}`);
  // Mid-call a chime would also reach the citizen; the title and the notification still tell the clerk.
  if (!state.call) chime();
  // Always notify, not only when document.hidden: a visible tab may still be covered by other windows.
  notify(t('A citizen is waiting'), where, visit.visit_id);
}

function renderNotifyButton() {
  const permission = 'Notification' in window ? Notification.permission : 'denied';
  ui.notify.textContent = t(permission === 'default' ? 'Enable notifications' : 'Test alert');
  ui.notifyHint.textContent = t('Notifications are blocked in the browser settings.');
  ui.notifyHint.hidden = permission !== 'denied';
}

ui.notify.addEventListener('click', async () => {
  await unlockAudio();
  if ('Notification' in window && Notification.permission === 'default') await Notification.requestPermission();
  renderNotifyButton();
  chime(); // lets the clerk check the volume now rather than when the first citizen arrives
  notify('Amtsklingel', t('Notifications are on.'), 'test');
});

// == call =====================================================================

function startCall(visit, iceServers) {
  if (state.call) teardown(); // central allows one call per clerk; never keep two peer connections
  // Only central's ICE servers; a null username would reach the browser as the string "null".
  const servers = iceServers.map(({ urls, username, credential }) =>
    ({ urls, ...(username != null && { username }), ...(credential != null && { credential }) }));
  const pc = new RTCPeerConnection({ iceServers: servers });
  const call = { visit, pc, stream: null, remote: new MediaStream(), chain: null, early: [] };
  state.call = call;
  window.amtsklingel.pc = pc;
  pc.addEventListener('icecandidate', ({ candidate: c }) => {
    // A null or empty candidate only marks the end of gathering; the kiosk does not need it.
    if (!c?.candidate || state.call !== call) return;
    send({ type: 'rtc.candidate', visit_id: visit.visit_id,
      candidate: { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } }, { quiet: true });
  });
  pc.addEventListener('track', ({ track }) => {
    call.remote.addTrack(track);
    ui.remoteVideo.srcObject = call.remote; // re-assign so the element loads the added track
  });
  pc.addEventListener('connectionstatechange', () => showCallState(pc.connectionState));
  // The kiosk's offer and candidates wait for the camera, so the answer already carries our tracks.
  call.chain = openMedia(call);

  ui.callNotice.textContent = '';
  ui.callIdle.hidden = ui.mediaNote.hidden = true;
  ui.callView.hidden = false;
  ui.callTransfer.dataset.testid = 'transfer-select'; // only while shown, so the test id stays unambiguous
  const department = state.departments.get(visit.department)?.name ?? visit.department;
  ui.callWho.textContent = [visit.kiosk_location, languageName(visit.language), department].join(' · ');
  fillTransfer(ui.callTransfer, visit.department);
  showCallState('new');
  renderCallButtons();
  updateButtons();
  ui.callHeading.focus();
}

async function openMedia(call) {
  let stream = null, note = '';
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  } catch {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      note = 'Camera unavailable – the citizen can only hear you.';
    } catch {
      note = 'Camera and microphone unavailable – the citizen can neither see nor hear you.';
    }
  }
  if (state.call !== call) { stream?.getTracks().forEach((track) => track.stop()); return; } // ended meanwhile
  call.stream = stream;
  ui.mediaNote.textContent = note && t(note);
  ui.mediaNote.hidden = !note;
  ui.localVideo.srcObject = stream;
  ui.localVideo.hidden = !stream?.getVideoTracks().length; // no empty grey box over the citizen's picture
  // addTrack before the offer arrives: applying the offer pairs these senders with its m-lines (sendrecv).
  stream?.getTracks().forEach((track) => call.pc.addTrack(track, stream));
  renderCallButtons();
}

// Signalling steps run one after another, after the camera is ready, and only for the current call.
function whenReady(call, step) {
  call.chain = call.chain.then(() => (state.call === call ? step() : undefined))
    .catch((err) => console.warn('signalling step failed', err));
}

function onOffer(msg) {
  const call = state.call;
  if (call?.visit.visit_id !== msg.visit_id) return;
  whenReady(call, async () => {
    try {
      await call.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      await call.pc.setLocalDescription(await call.pc.createAnswer());
    } catch (err) {
      showCallState('failed');
      throw err;
    }
    send({ type: 'rtc.answer', visit_id: msg.visit_id, sdp: call.pc.localDescription.sdp });
    for (const candidate of call.early.splice(0)) await call.pc.addIceCandidate(candidate).catch(() => {});
  });
}

function onCandidate(msg) {
  const call = state.call, c = msg.candidate;
  // null or "" marks the end of the kiosk's candidates: nothing to add.
  if (call?.visit.visit_id !== msg.visit_id || !c?.candidate) return;
  const candidate = { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex };
  // A candidate overtaking its offer is kept until the offer is applied.
  whenReady(call, () => (call.pc.remoteDescription ? call.pc.addIceCandidate(candidate) : call.early.push(candidate)));
}

function showCallState(connectionState) {
  const text = { connected: '', failed: t('The connection to the citizen failed.') }[connectionState];
  ui.callState.textContent = text ?? t('Connecting the call…');
  ui.callState.dataset.state = connectionState;
}

const tracksOf = (kind) => state.call?.stream?.getTracks().filter((track) => track.kind === kind) ?? [];

function renderCallButtons() {
  const [audioTrack] = tracksOf('audio'), [videoTrack] = tracksOf('video');
  ui.mute.textContent = t(audioTrack && !audioTrack.enabled ? 'Unmute' : 'Mute');
  ui.mute.disabled = !audioTrack;
  ui.camera.textContent = t(videoTrack && !videoTrack.enabled ? 'Camera on' : 'Camera off');
  ui.camera.disabled = !videoTrack;
}


function endCall(visitId, reason) {
  if (state.call?.visit.visit_id !== visitId) return;
  const focusWasInCall = ui.callView.contains(document.activeElement);
  teardown();
  ui.callNotice.textContent = [t('The call has ended.'), END_REASONS[reason] && t(END_REASONS[reason])].filter(Boolean).join(' ');
  if (focusWasInCall) ui.queueHeading.focus(); // back to the list, where the next citizen waits
}

function teardown() {
  const call = state.call;
  state.call = window.amtsklingel.pc = null;
  call.pc.close();
  call.stream?.getTracks().forEach((track) => track.stop()); // the camera light goes off
  ui.localVideo.srcObject = ui.remoteVideo.srcObject = null;
  ui.callView.hidden = true;
  delete ui.callTransfer.dataset.testid;
  ui.callIdle.hidden = false;
  updateButtons();
}

for (const [button, kind] of [[ui.mute, 'audio'], [ui.camera, 'video']]) {
  button.addEventListener('click', () => { // enabled=false sends silence/black: no renegotiation needed
    for (const track of tracksOf(kind)) track.enabled = !track.enabled;
    renderCallButtons();
  });
}
wireTransfer(ui.callTransfer, () => state.call?.visit.visit_id);
// Central answers with visit.ended, which closes the call view. Offline, media still flows peer to peer,
// so the clerk can finish the conversation and hang up once the console is back.
ui.hangup.addEventListener('click', () => state.call && send({ type: 'visit.hangup', visit_id: state.call.visit.visit_id }));

// == start ====================================================================

ui.bannerClose.addEventListener('click', () => { ui.banner.hidden = true; });
ui.reclaim.addEventListener('click', connect);
addEventListener('online', () => { if (!state.ws && !state.replaced) connect(); });
setInterval(() => { for (const row of state.rows.values()) tick(row, Date.now() / 1000 + state.clockSkew); }, 1000);
setInterval(() => {
  const ws = state.ws;
  if (ws?.readyState !== WebSocket.OPEN) return;
  // No frame (not even a pong) for 2.5 intervals: the socket is half-open, so drop it and reconnect.
  if (Date.now() - state.lastSeen > 2.5 * PING_MS) { ws.close(); connectionLost(ws, true); return; }
  send({ type: 'ping' }, { quiet: true });
}, PING_MS);

applyStrings(document);
renderNotifyButton();
connect();
