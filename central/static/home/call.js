/* The citizen's side of the call, as on a kiosk: on call.start the page offers to the clerk; on
 * call.participant_joined with offer=true (an interpreter or a colleague) it offers to them too, one
 * RTCPeerConnection per participant (a mesh, protocol/participants.py). `peer` null = the clerk. */
import { send } from './connection.js';

const calls = new Map(); // peer id ('' for the clerk) -> {pc, early: [candidates before the answer], tile}
// For tests and the benchmark: the connections, and when the clerk's call passed its steps (ms, wall clock).
export const observed = { pcs: calls, marks: {}, get pc() { return calls.get('')?.pc || null; } };
const mark = (peer, name) => { if (!peer) observed.marks[name] = performance.timeOrigin + performance.now(); };

let visitId = null, devices = null, onState = () => {}, clerkVideo = null;

/** Where the clerk's picture goes (a <video>) and who hears of the clerk connection's state. */
export function setUp(options) { ({ clerkVideo, onState } = options); }

function iceServers(list) {
  // Only central's servers; a null username would reach the browser as the string "null".
  return (list || []).map(({ urls, username, credential }) =>
    ({ urls, ...(username != null && { username }), ...(credential != null && { credential }) }));
}

/** Offer to `peer` ('' = the clerk); replaces any earlier connection with them (a restart). */
export async function offer(visit, media, servers, peer = '', tile = null) {
  close(peer);
  mark(peer, 'start');
  visitId = visit; devices = media;
  const pc = new RTCPeerConnection({ iceServers: iceServers(servers) });
  const call = { pc, early: [], tile, remote: new MediaStream() };
  calls.set(peer, call);
  const to = peer ? { peer } : {};
  for (const track of devices?.stream?.getTracks() || []) pc.addTrack(track, devices.stream);
  // Without a camera the page still receives the other side's picture.
  if (!devices?.video) pc.addTransceiver('video', { direction: 'recvonly' });
  if (!devices?.audio) pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addEventListener('icecandidate', ({ candidate: c }) => {
    if (!c?.candidate || calls.get(peer) !== call) return;
    send({ type: 'rtc.candidate', visit_id: visitId, ...to,
      candidate: { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } });
  });
  pc.addEventListener('track', ({ track }) => {
    call.remote.addTrack(track);
    const video = peer ? tile?.querySelector('video') : clerkVideo;
    if (video) video.srcObject = call.remote; // re-assign so the element loads the added track
  });
  pc.addEventListener('connectionstatechange', () => {
    if (calls.get(peer) !== call) return;
    const state = pc.connectionState;
    mark(peer, state);
    if (state === 'connected' || state === 'failed') send({ type: 'rtc.state', visit_id: visitId, ...to, state });
    if (!peer) onState(state);
  });
  const description = await pc.createOffer();
  await pc.setLocalDescription(description);
  send({ type: 'rtc.offer', visit_id: visitId, ...to, sdp: pc.localDescription.sdp });
  mark(peer, 'offer');
}

export async function answer({ peer, sdp }) {
  const call = calls.get(peer || '');
  if (!call || call.pc.signalingState !== 'have-local-offer') return;
  mark(peer || '', 'answer');
  await call.pc.setRemoteDescription({ type: 'answer', sdp });
  for (const candidate of call.early.splice(0)) await call.pc.addIceCandidate(candidate).catch(() => {});
}

export async function candidate({ peer, candidate: c }) {
  const call = calls.get(peer || '');
  if (!call || !c?.candidate) return;
  if (call.pc.remoteDescription) await call.pc.addIceCandidate(c).catch((err) => console.info('candidate: %s', err));
  else call.early.push(c);
}

/** Close the connection with one participant ('' = the clerk) and remove their tile. */
export function close(peer) {
  const call = calls.get(peer);
  if (!call) return;
  calls.delete(peer);
  call.pc.close();
  call.tile?.remove();
}

export function closeAll() {
  for (const peer of [...calls.keys()]) close(peer);
  if (clerkVideo) clerkVideo.srcObject = null;
}

/** Mute the microphone or switch the camera off ('audio' | 'video'); returns whether it is on now. */
export function toggle(kind) {
  const tracks = kind === 'audio' ? devices?.stream?.getAudioTracks() : devices?.stream?.getVideoTracks();
  if (!tracks?.length) return false;
  const on = !tracks[0].enabled;
  tracks.forEach((track) => { track.enabled = on; });
  return on;
}
