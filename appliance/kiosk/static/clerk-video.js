/* The clerk's picture on the call screen.
 *
 * The appliance does not decode the clerk's video: appliance/kiosk/video_feed.py streams the
 * call's encoded frames (VP8 or H.264) from GET /clerk-video/stream, and this module decodes
 * them with WebCodecs and plays them in <video id="clerk-video"> through a
 * MediaStreamTrackGenerator. Where that is missing it draws into <canvas id="clerk-canvas">.
 * If the appliance had to decode after all, the stream carries raw I420 frames instead; they
 * take the same way to the screen. Why this path: docs/decisions/0004-kiosk-clerk-video-path.md.
 *
 * Contract with kiosk.js: attach(videoEl, canvasEl) is called each time the call screen
 * appears and returns the function that stops it when the screen goes away. Until the first
 * picture (and after the call's video ends) both elements stay empty, so the page's
 * "The picture will appear in a moment." shows through.
 *
 * Stream records: a 16-byte little-endian header (kind u8, flags u8, reserved u16,
 * length u32, timestamp in microseconds u64), then `length` bytes.
 *
 * The citizen's own picture (self-view.js, appliance/kiosk/self_view.py) comes in the same
 * format from another URL: attach(null, canvasEl, { url, stats, label, maxWidth }) draws it into
 * the canvas only, at most maxWidth pixels wide. */

const STREAM_URL = '/clerk-video/stream';
const HEADER_BYTES = 16;
const KIND = { KEEPALIVE: 0, CONFIG: 1, ENCODED: 2, RAW: 3, END: 4 };
const MAX_RECORD_BYTES = 16 * 1024 * 1024;
const MAX_DECODE_QUEUE = 15;   // frames; further behind, start again at a fresh key frame
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 4000;
const BT601 = { primaries: 'smpte170m', transfer: 'smpte170m', matrix: 'smpte170m', fullRange: false };

/** Counters for diagnostics and tests (one set per page). */
export const stats = { connects: 0, frames: 0, shown: 0, errors: 0, mode: null, codec: null, output: null };

export function attach(videoEl, canvasEl, options = {}) {
  const opts = { url: STREAM_URL, stats, label: 'clerk video', maxWidth: Infinity, ...options };
  const session = { stopped: false, abort: null };
  const screen = makeScreen(videoEl, canvasEl, opts);
  run(session, screen, opts);
  return () => {
    session.stopped = true;
    if (session.abort) session.abort.abort();
    screen.clear();
  };
}

async function run(session, screen, opts) {
  const stats = opts.stats;
  let delay = RETRY_MIN_MS;
  while (!session.stopped) {
    const abort = new AbortController();
    session.abort = abort;
    let pictures = false;
    try {
      pictures = await play(abort, screen, opts);
    } catch (e) {
      if (!session.stopped && e.name !== 'AbortError') {
        stats.errors += 1;
        console.warn(`${opts.label}:`, e.message || e);
      }
    }
    if (session.stopped) break;
    delay = pictures ? RETRY_MIN_MS : Math.min(2 * delay, RETRY_MAX_MS);
    await new Promise(resolve => setTimeout(resolve, delay));
  }
}

/** One connection: true if it showed pictures. A new connection makes the appliance ask the
 *  clerk's browser for a key frame, so reconnecting is also how a broken decoder recovers. */
async function play(abort, screen, opts) {
  const stats = opts.stats;
  const response = await fetch(opts.url, { signal: abort.signal, cache: 'no-store' });
  if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
  stats.connects += 1;
  const records = new RecordReader(response.body.getReader());
  let decoder = null;
  let waitForKey = true;
  let pictures = false;
  const broken = error => {
    stats.errors += 1;
    console.warn(`${opts.label}: decoder:`, error.message || error);
    abort.abort();
  };
  try {
    for (;;) {
      const rec = await records.next();
      if (!rec) return pictures;
      if (rec.kind === KIND.CONFIG) {
        const config = JSON.parse(new TextDecoder().decode(rec.payload));
        stats.mode = config.mode;
        stats.codec = config.codec || null;
        if (decoder) decoder.close();
        decoder = null;
        waitForKey = true;
        if (config.mode === 'encoded') {
          decoder = new VideoDecoder({ output: frame => screen.show(frame), error: broken });
          decoder.configure({ codec: config.codec, optimizeForLatency: true });
        }
      } else if (rec.kind === KIND.ENCODED) {
        if (!decoder || decoder.state !== 'configured') continue;
        const key = (rec.flags & 1) === 1;
        if (waitForKey && !key) continue;
        waitForKey = false;
        if (decoder.decodeQueueSize > MAX_DECODE_QUEUE) throw new Error('the decoder fell behind');
        decoder.decode(new EncodedVideoChunk({ type: key ? 'key' : 'delta', timestamp: rec.timestamp, data: rec.payload }));
        stats.frames += 1;
        pictures = true;
      } else if (rec.kind === KIND.RAW) {
        const head = new DataView(rec.payload.buffer, rec.payload.byteOffset, 8);
        const width = head.getUint32(0, true), height = head.getUint32(4, true);
        screen.show(new VideoFrame(rec.payload.subarray(8), {
          format: 'I420', codedWidth: width, codedHeight: height, timestamp: rec.timestamp, colorSpace: BT601 }));
        stats.frames += 1;
        pictures = true;
      } else if (rec.kind === KIND.END) {
        screen.clear();
        return pictures;
      }
    }
  } finally {
    if (decoder && decoder.state !== 'closed') decoder.close();
  }
}

class RecordReader {
  constructor(reader) {
    this.reader = reader;
    this.buffer = new Uint8Array(0);
    this.pos = 0;
  }

  async next() {
    for (;;) {
      const available = this.buffer.length - this.pos;
      if (available >= HEADER_BYTES) {
        const head = new DataView(this.buffer.buffer, this.buffer.byteOffset + this.pos, HEADER_BYTES);
        const length = head.getUint32(4, true);
        if (length > MAX_RECORD_BYTES) throw new Error('stream record too large');
        if (available >= HEADER_BYTES + length) {
          const start = this.pos + HEADER_BYTES;
          this.pos = start + length;
          return { kind: head.getUint8(0), flags: head.getUint8(1), timestamp: Number(head.getBigUint64(8, true)),
                   payload: this.buffer.subarray(start, start + length) };
        }
      }
      const { value, done } = await this.reader.read();
      if (done) return null;
      // A fresh buffer each time: payloads handed out earlier stay intact.
      const merged = new Uint8Array(available + value.length);
      merged.set(this.buffer.subarray(this.pos));
      merged.set(value, available);
      this.buffer = merged;
      this.pos = 0;
    }
  }
}

/** Where decoded frames go: a <video> fed by a MediaStreamTrackGenerator (Chromium), else the canvas. */
function makeScreen(videoEl, canvasEl, opts) {
  const stats = opts.stats;
  if (videoEl && typeof MediaStreamTrackGenerator === 'function') {
    stats.output = 'video';
    let generator = null, writer = null;
    return {
      show(frame) {
        if (!writer) {
          generator = new MediaStreamTrackGenerator({ kind: 'video' });
          writer = generator.writable.getWriter();
          videoEl.muted = true;  // the clerk's voice comes from the appliance's speaker, not the page
          videoEl.srcObject = new MediaStream([generator]);
          videoEl.play().catch(() => {});
        }
        writer.write(frame).then(() => { stats.shown += 1; }, () => frame.close());
      },
      clear() {
        if (writer) writer.close().catch(() => {});
        if (generator) generator.stop();
        generator = writer = null;
        videoEl.srcObject = null;
      },
    };
  }
  stats.output = 'canvas';
  const ctx = canvasEl.getContext('2d');  // with alpha: an empty canvas lets the placeholder show
  return {
    show(frame) {
      const scale = Math.min(1, opts.maxWidth / frame.displayWidth);
      const w = Math.round(frame.displayWidth * scale), h = Math.round(frame.displayHeight * scale);
      if (canvasEl.width !== w || canvasEl.height !== h) { canvasEl.width = w; canvasEl.height = h; }
      ctx.drawImage(frame, 0, 0, w, h);
      frame.close();
      stats.shown += 1;
    },
    clear() {
      canvasEl.width = 0;  // an empty canvas is transparent again
    },
  };
}
