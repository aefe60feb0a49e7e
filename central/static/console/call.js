/* The clerk's side of the video call: camera and microphone, the RTCPeerConnection, signalling via central. */
import { languageName, t, whereFrom } from './i18n.js';
import { observed, state, ui } from './page.js';
import { send } from './connection.js';
import { fillTransfer, updateButtons, wireTransfer } from './queue.js';
import { startGuests, stopGuests } from './guests.js';

// How long a call may take to connect after the kiosk's offer before this side gives up and tells central
// (rtc.state failed). Central's own timer (call_connect_timeout_s) runs from its call.start to the kiosk,
// just before the offer; ours waits a little longer, so normally central's verdict comes first. It starts
// at the offer, not the pick-up: a kiosk that is briefly offline gets call.start only when it is back.
// Set by central in console.html.
const CONNECT_BOUND_MS = 1000 * Number(document.querySelector('.console').dataset.connectTimeoutS || 35);
// After central restarted, our snapshot may come before the kiosk is back and has told central about
// the call. The media may still flow, so keep the call this long for central to confirm it (the kiosk
// backs off up to 30 s) before hanging up.
const CONFIRM_MS = 45000;

const NOTICES = {
  failed: 'The video connection to %(location)s could not be set up (network). The citizen is back at the head of the queue.',
};
const END_REASONS = {
  hangup_kiosk: 'The citizen hung up.', kiosk_lost: 'The connection to the kiosk was lost.',
  staff_lost: 'The connection to the console was lost.', transferred: 'The visit was transferred.',
  device_failed: "The kiosk's microphone stopped working, so the call was ended.",
};
// call.notice: what the clerk should know about the kiosk's side of the call (central/live/kiosk_side.py).
const KIOSK_NOTES = {
  kiosk_camera_failed: "The kiosk's camera stopped working. You can still hear each other; the citizen cannot be seen.",
  kiosk_speaker_failed: "The kiosk's loudspeaker stopped working. The citizen cannot hear you; you can still see and hear them.",
};
// Our own answer refused the video section (m=video 0): this browser decodes none of the kiosk's video
// codecs. The kiosk goes on with audio only and says so to the citizen (appliance/call/answer.py).
const VIDEO_REJECTED = "This browser cannot play the kiosk's video (it lacks H.264 and VP8), so you and the citizen "
  + 'can only hear each other. Please tell IT.';
const rejectsVideo = (sdp) => /^m=video 0 /m.test(sdp);

/** call.assigned: open the call view and await the kiosk's offer; after a reconnect keep a live call. */
export function assignCall({ visit, ice_servers: iceServers, resumed }) {
  const call = state.call;
  if (resumed && call?.visit.visit_id === visit.visit_id && isLive(call.pc)) {
    call.visit = visit;
    clearTimeout(call.confirmTimer); // central knows the call again
    return;
  }
  startCall(visit, iceServers);
  // We have no peer connection for this call (the page was reloaded, or ours died): ask for a fresh offer.
  if (resumed) send({ type: 'call.restart', visit_id: visit.visit_id }, { quiet: true });
}

// A peer connection worth keeping: it got the kiosk's offer and has not failed.
const isLive = (pc) => !!pc.remoteDescription && !['failed', 'closed'].includes(pc.connectionState);

function startCall(visit, iceServers) {
  if (state.call) teardown(); // central allows one call per clerk; never keep two peer connections
  // Only central's ICE servers; a null username would reach the browser as the string "null".
  const servers = iceServers.map(({ urls, username, credential }) =>
    ({ urls, ...(username != null && { username }), ...(credential != null && { credential }) }));
  const pc = new RTCPeerConnection({ iceServers: servers });
  const call = { visit, pc, stream: null, remote: new MediaStream(), chain: null, early: [], bound: null,
    confirmTimer: null, iceServers };
  state.call = call;
  observed.pc = pc;
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
  pc.addEventListener('connectionstatechange', () => onConnectionState(call));
  // The kiosk's offer and candidates wait for the camera, so the answer already carries our tracks.
  call.chain = openMedia(call);
  startGuests(call); // interpreters and colleagues (guests.js)

  ui.callNotice.textContent = '';
  ui.callIdle.hidden = ui.mediaNote.hidden = ui.kioskNote.hidden = true;
  ui.callView.hidden = false;
  ui.callTransfer.dataset.testid = 'transfer-select'; // only while shown, so the test id stays unambiguous
  const department = state.departments.get(visit.department)?.name ?? visit.department;
  ui.callWho.textContent = [whereFrom(visit), languageName(visit.language), department].join(' · ');
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
      note = t('Camera unavailable – the citizen can only hear you.');
    } catch {
      note = t('Camera and microphone unavailable – the citizen can neither see nor hear you.');
    }
  }
  if (state.call !== call) { stream?.getTracks().forEach((track) => track.stop()); return; } // ended meanwhile
  call.stream = stream;
  ui.mediaNote.textContent = note;
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

/** rtc.offer from the kiosk: answer it. */
export function onOffer(msg) {
  const call = state.call;
  if (call?.visit.visit_id !== msg.visit_id) return;
  clearTimeout(call.bound); // each (re)negotiation gets the full time
  call.bound = setTimeout(() => giveUp(call), CONNECT_BOUND_MS);
  whenReady(call, async () => {
    try {
      await call.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      await call.pc.setLocalDescription(await call.pc.createAnswer());
    } catch (err) {
      showCallState('failed');
      throw err;
    }
    send({ type: 'rtc.answer', visit_id: msg.visit_id, sdp: call.pc.localDescription.sdp });
    if (rejectsVideo(call.pc.localDescription.sdp)) {
      ui.kioskNote.textContent = t(VIDEO_REJECTED);
      ui.kioskNote.hidden = false;
    }
    for (const candidate of call.early.splice(0)) await call.pc.addIceCandidate(candidate).catch(() => {});
  });
}

/** rtc.candidate from the kiosk. */
export function onCandidate(msg) {
  const call = state.call, c = msg.candidate;
  // null or "" marks the end of the kiosk's candidates: nothing to add.
  if (call?.visit.visit_id !== msg.visit_id || !c?.candidate) return;
  const candidate = { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex };
  // A candidate overtaking its offer is kept until the offer is applied.
  whenReady(call, () => (call.pc.remoteDescription ? call.pc.addIceCandidate(candidate) : call.early.push(candidate)));
}

// Central decides what happens to the visit (call.failed puts it back at the head of the queue); it only
// learns how our side fared from us.
function onConnectionState(call) {
  if (state.call !== call) return;
  const connectionState = call.pc.connectionState;
  showCallState(connectionState);
  if (connectionState === 'connected') {
    clearTimeout(call.bound);
    send({ type: 'rtc.state', visit_id: call.visit.visit_id, state: 'connected' }, { quiet: true });
  } else if (connectionState === 'failed') {
    clearTimeout(call.bound);
    send({ type: 'rtc.state', visit_id: call.visit.visit_id, state: 'failed' }, { quiet: true });
  }
}

function giveUp(call) {
  if (state.call !== call || call.pc.connectionState === 'connected') return;
  showCallState('failed');
  send({ type: 'rtc.state', visit_id: call.visit.visit_id, state: 'failed' }, { quiet: true });
}

/** call.notice: e.g. the kiosk's camera failed and the call goes on audio-only. */
export function noticeCall({ visit_id: visitId, notice }) {
  if (state.call?.visit.visit_id !== visitId || !KIOSK_NOTES[notice]) return;
  ui.kioskNote.textContent = t(KIOSK_NOTES[notice]);
  ui.kioskNote.hidden = false;
}

/** call.failed: the media never connected; central put the citizen back at the head of the queue. */
export function failCall(visitId) {
  const call = state.call;
  if (call?.visit.visit_id !== visitId) return;
  const focusWasInCall = ui.callView.contains(document.activeElement);
  teardown();
  ui.callNotice.textContent = t(NOTICES.failed, { location: whereFrom(call.visit) });
  if (focusWasInCall) ui.queueHeading.focus();
}

/** Central's snapshot does not count us in this call (it may have restarted and not heard from the kiosk
 * yet): keep the media running, but hang up unless central confirms the call soon. */
export function awaitConfirmation() {
  const call = state.call;
  if (!call || call.confirmTimer) return;
  if (!isLive(call.pc)) { hangUpUnconfirmed(call); return; }
  call.confirmTimer = setTimeout(() => hangUpUnconfirmed(call), CONFIRM_MS);
}

function hangUpUnconfirmed(call) {
  if (state.call !== call) return;
  send({ type: 'visit.hangup', visit_id: call.visit.visit_id }, { quiet: true }); // so no kiosk is left in it
  endCall(call.visit.visit_id, null);
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

/** visit.ended (or central no longer counts us in the call): close the call view and say why. */
export function endCall(visitId, reason) {
  if (state.call?.visit.visit_id !== visitId) return;
  const focusWasInCall = ui.callView.contains(document.activeElement);
  teardown();
  ui.callNotice.textContent = [t('The call has ended.'), END_REASONS[reason] && t(END_REASONS[reason])].filter(Boolean).join(' ');
  if (focusWasInCall) ui.queueHeading.focus(); // back to the list, where the next citizen waits
}

/** Close the peer connection and free camera and microphone, without a word to central. */
export function teardown() {
  const call = state.call;
  if (!call) return;
  state.call = observed.pc = null;
  stopGuests();
  clearTimeout(call.bound);
  clearTimeout(call.confirmTimer);
  call.pc.close();
  call.stream?.getTracks().forEach((track) => track.stop()); // the camera light goes off
  ui.localVideo.srcObject = ui.remoteVideo.srcObject = null;
  ui.callView.hidden = true;
  delete ui.callTransfer.dataset.testid;
  ui.callIdle.hidden = false;
  updateButtons();
}

/** Mute, camera, transfer and hang-up buttons of the call view. */
export function setUpCallControls() {
  for (const [button, kind] of [[ui.mute, 'audio'], [ui.camera, 'video']]) {
    button.addEventListener('click', () => { // enabled=false sends silence/black: no renegotiation needed
      for (const track of tracksOf(kind)) track.enabled = !track.enabled;
      renderCallButtons();
    });
  }
  wireTransfer(ui.callTransfer, () => state.call?.visit.visit_id);
  // Central answers with visit.ended, which closes the call view. Offline, media still flows peer to peer,
  // so the clerk can finish the conversation and hang up once the console is back.
  ui.hangup.addEventListener('click', () => {
    const call = state.call;
    if (!call || !send({ type: 'visit.hangup', visit_id: call.visit.visit_id })) return;
    if (call.confirmTimer) endCall(call.visit.visit_id, null); // central does not know this call: no visit.ended will come
  });
}
