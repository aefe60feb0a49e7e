/* Everybody else in the call besides the clerk (an interpreter, a colleague): a tile each, with their
 * picture and a label saying who they are, from the view's `participants` (appliance/controller/view.py).
 *
 * Each tile streams its guest's encoded picture from GET /guest-video/<peer>/stream
 * (appliance/kiosk/guest_video.py) and decodes it exactly as the clerk's picture is decoded
 * (clerk-video.js). Their voices need nothing here: the appliance mixes them into the speaker.
 *
 * Contract with kiosk.js: showParticipants(container, participants, t) after every view of the call
 * screen (and with [] when it goes away); tiles are kept while their guest stays, so a new view
 * does not restart a picture. */
import { attach } from './clerk-video.js';

const N_ = (msgid) => msgid;
/** What a participant is in the call (protocol/participants.py Role), as the tile says it. */
export const ROLES = { clerk: N_('Clerk'), interpreter: N_('Interpreter'), colleague: N_('Colleague') };
const SOMEONE = N_('Participant');

/** Counters of each tile's picture stream, by peer id (diagnostics and tests). */
export const stats = {};
const tiles = new Map(); // peer -> { figure, role, label, stop }

export function showParticipants(container, participants, t) {
  const wanted = new Set(participants.map((p) => p.peer));
  for (const [peer, tile] of tiles) {
    if (wanted.has(peer)) continue;
    tile.stop();
    tile.figure.remove();
    tiles.delete(peer);
    delete stats[peer];
  }
  for (const participant of participants) {
    let tile = tiles.get(participant.peer);
    if (!tile) {
      tile = makeTile(participant.peer);
      tiles.set(participant.peer, tile);
    }
    container.append(tile.figure); // in the order they joined
    tile.role.textContent = t(ROLES[participant.role] || SOMEONE);
    tile.label.textContent = participant.label || '';
    tile.label.hidden = !participant.label;
  }
  container.hidden = participants.length === 0;
}

function makeTile(peer) {
  const figure = document.createElement('figure');
  figure.className = 'guest-tile';
  figure.dataset.peer = peer;
  const picture = document.createElement('div');
  picture.className = 'guest-picture';
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true; // their voice comes from the appliance's speaker, mixed with the clerk's
  const canvas = document.createElement('canvas');
  picture.append(video, canvas);
  const caption = document.createElement('figcaption');
  const role = document.createElement('span');
  role.className = 'guest-role';
  const label = document.createElement('span');
  label.className = 'guest-label';
  label.dir = 'auto';
  caption.append(role, label);
  figure.append(picture, caption);
  stats[peer] = { connects: 0, frames: 0, shown: 0, errors: 0, mode: null, codec: null, output: null };
  const stop = attach(video, canvas, { url: `/guest-video/${encodeURIComponent(peer)}/stream`,
                                       stats: stats[peer], label: 'guest video' });
  return { figure, role, label, stop };
}
