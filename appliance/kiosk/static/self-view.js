/* The citizen's own picture on the call screen, small and mirrored (as people expect to see
 * themselves). appliance/kiosk/self_view.py streams the call's camera frames from
 * GET /self-view/stream: the Pi 4's H.264 key frames unchanged, or elsewhere raw I420 frames
 * scaled down to 180 lines at 15 fps. The stream has the clerk's picture's format, so
 * clerk-video.js reads, decodes and draws it; here only into <canvas id="self-view-canvas">,
 * which lies over the placeholder <img id="self-view"> and stays transparent until the first
 * frame and after the call. The mirroring is CSS (kiosk.css): the canvas holds the picture as
 * the clerk sees it.
 *
 * Contract with kiosk.js: attach(canvasEl) when the call screen appears (also the self-test's and the
 * QR code scan's picture, larger: attach(canvasEl, maxWidth)); it returns the function that stops it
 * when the screen goes away. */
import { attach as attachStream } from './clerk-video.js';

const STREAM_URL = '/self-view/stream';
const MAX_WIDTH = 320;  // CSS pixels of the box (8rem) times a generous device pixel ratio

/** Counters for diagnostics and tests (one set per page). */
export const stats = { connects: 0, frames: 0, shown: 0, errors: 0, mode: null, codec: null, output: null };

export function attach(canvasEl, maxWidth = MAX_WIDTH) {
  return attachStream(null, canvasEl, { url: STREAM_URL, stats, label: 'self view', maxWidth });
}
