// The kiosk page of bench.kiosk_video_path: shows the clerk's video by the path in ?mode=
// and records, for every frame it puts on screen, the time and (every `every`-th frame)
// the top-left corner of the picture, where the test pattern's clock code sits.
// The bench reads the code with appliance.hardware.fake.camera.read_clock afterwards.
'use strict';
(() => {
  const mode = new URLSearchParams(location.search).get('mode');
  const video = document.getElementById('clerk-video');
  const canvas = document.getElementById('clerk-canvas');
  const img = document.getElementById('clerk-img');
  const now = () => performance.timeOrigin + performance.now();

  const B = window.bench = {
    mode, frames: 0, samples: [], errors: [], every: 3, ready: false, maxSamples: 3000,
    reset() { this.frames = 0; this.samples = []; },
  };
  window.addEventListener('error', e => B.errors.push(String(e.message)));

  // -- measuring ---------------------------------------------------------------
  const crop = document.createElement('canvas');
  const cropCtx = crop.getContext('2d', { willReadFrequently: true });
  const cellSize = w => 16 * Math.max(1, Math.floor(w / 640));

  function grabCorner(src, w) {  // the clock code's corner, one byte per pixel (green = luma on grey)
    const c = cellSize(w), cw = 17 * c, ch = 4 * c;
    if (crop.width !== cw || crop.height !== ch) { crop.width = cw; crop.height = ch; }
    cropCtx.drawImage(src, 0, 0, cw, ch, 0, 0, cw, ch);
    const rgba = cropCtx.getImageData(0, 0, cw, ch).data;
    const y = new Uint8Array(cw * ch);
    for (let i = 0; i < y.length; i++) y[i] = rgba[4 * i + 1];
    return { cw, ch, y };
  }

  // `t` is when the frame reaches the screen's next update: for <video> the time of its
  // requestVideoFrameCallback, for an <img> the animation frame that first shows it. A frame
  // drawn into a canvas gets the time of the next animation frame, as a <video> frame would.
  function shown(src, w, h, t) {
    B.frames++;
    if (B.frames % B.every === 0 && B.samples.length < B.maxSamples) {
      const g = grabCorner(src, w);
      const sample = { t, w, h, cw: g.cw, ch: g.ch, y: g.y };
      B.samples.push(sample);
      if (t === undefined) {
        const drawn = now();
        requestAnimationFrame(ts => { sample.t = Math.max(drawn, performance.timeOrigin + ts); });
      }
    }
  }

  B.collect = (from, count) => B.samples.slice(from, from + count).map(s => {
    let bin = '';
    for (let i = 0; i < s.y.length; i += 0x8000) bin += String.fromCharCode.apply(null, s.y.subarray(i, i + 0x8000));
    return { t: s.t, w: s.w, h: s.h, cw: s.cw, ch: s.ch, y: btoa(bin) };
  });

  // -- raw I420 over a WebSocket ---------------------------------------------------
  function webglRenderer() {
    const gl = canvas.getContext('webgl', { alpha: false, antialias: false, depth: false, preserveDrawingBuffer: false });
    if (!gl) throw new Error('no WebGL');
    const vs = 'attribute vec2 p; varying vec2 uv; void main() { uv = vec2((p.x + 1.0) / 2.0, (1.0 - p.y) / 2.0); gl_Position = vec4(p, 0.0, 1.0); }';
    const fs = `precision mediump float; varying vec2 uv; uniform sampler2D ty, tu, tv;
      void main() {
        float y = 1.164 * (texture2D(ty, uv).r - 0.0625);
        float u = texture2D(tu, uv).r - 0.5, v = texture2D(tv, uv).r - 0.5;
        gl_FragColor = vec4(y + 1.596 * v, y - 0.392 * u - 0.813 * v, y + 2.017 * u, 1.0);
      }`;
    const prog = gl.createProgram();
    for (const [type, src] of [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]]) {
      const s = gl.createShader(type); gl.shaderSource(s, src); gl.compileShader(s); gl.attachShader(prog, s);
    }
    gl.linkProgram(prog); gl.useProgram(prog);
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(prog, 'p');
    gl.enableVertexAttribArray(loc); gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    const tex = ['ty', 'tu', 'tv'].map((name, i) => {
      const t = gl.createTexture(); gl.activeTexture(gl.TEXTURE0 + i); gl.bindTexture(gl.TEXTURE_2D, t);
      for (const k of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_2D, k, gl.LINEAR);
      for (const k of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T]) gl.texParameteri(gl.TEXTURE_2D, k, gl.CLAMP_TO_EDGE);
      gl.uniform1i(gl.getUniformLocation(prog, name), i);
      return t;
    });
    return (data, w, h) => {
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; gl.viewport(0, 0, w, h); }
      const cw = w >> 1, ch = h >> 1;
      const planes = [[data.subarray(0, w * h), w, h], [data.subarray(w * h, w * h + cw * ch), cw, ch],
                      [data.subarray(w * h + cw * ch, w * h + 2 * cw * ch), cw, ch]];
      planes.forEach(([p, pw, ph], i) => {
        gl.activeTexture(gl.TEXTURE0 + i); gl.bindTexture(gl.TEXTURE_2D, tex[i]);
        gl.texImage2D(gl.TEXTURE_2D, 0, gl.LUMINANCE, pw, ph, 0, gl.LUMINANCE, gl.UNSIGNED_BYTE, p);
      });
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    };
  }

  function putImageDataRenderer() {  // YUV -> RGBA in JavaScript, BT.601 limited range, integer maths
    const ctx = canvas.getContext('2d', { alpha: false });
    let image = null;  // Uint8ClampedArray: out-of-range results clamp by themselves
    return (data, w, h) => {
      if (!image || image.width !== w || image.height !== h) {
        canvas.width = w; canvas.height = h; image = ctx.createImageData(w, h);
      }
      const out = image.data, cw = w >> 1, uo = w * h, vo = uo + cw * (h >> 1);
      for (let y = 0; y < h; y++) {
        const crow = (y >> 1) * cw;
        for (let x = 0; x < w; x++) {
          const Y = 298 * (data[y * w + x] - 16), U = data[uo + crow + (x >> 1)] - 128, V = data[vo + crow + (x >> 1)] - 128;
          const o = (y * w + x) << 2;
          out[o] = (Y + 409 * V + 128) >> 8;
          out[o + 1] = (Y - 100 * U - 208 * V + 128) >> 8;
          out[o + 2] = (Y + 516 * U + 128) >> 8;
          out[o + 3] = 255;
        }
      }
      ctx.putImageData(image, 0, 0);
    };
  }

  function videoFrameRenderer() {  // Chromium converts I420 natively (WebCodecs VideoFrame -> drawImage)
    const ctx = canvas.getContext('2d', { alpha: false });
    const colorSpace = { primaries: 'smpte170m', transfer: 'smpte170m', matrix: 'smpte170m', fullRange: false };
    let ts = 0;
    return (data, w, h) => {
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      const frame = new VideoFrame(data, { format: 'I420', codedWidth: w, codedHeight: h, timestamp: ts++, colorSpace });
      ctx.drawImage(frame, 0, 0);
      frame.close();
    };
  }

  function rawOverWebSocket(render) {
    canvas.style.display = 'block';
    const ws = new WebSocket(`ws://${location.host}/ws`);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => { B.ready = true; };
    ws.onmessage = ev => {
      const head = new Uint32Array(ev.data, 0, 2), w = head[0], h = head[1];
      render(new Uint8Array(ev.data, 8), w, h);
      shown(canvas, w, h);
      ws.send('a');  // ask for the next frame only after this one is on the canvas
    };
  }

  // -- into a <video> through a MediaStreamTrackGenerator (Chromium's "breakout box") --
  function generatorWriter() {
    const generator = new MediaStreamTrackGenerator({ kind: 'video' });
    video.srcObject = new MediaStream([generator]);
    watchVideo();
    return generator.writable.getWriter();
  }

  function rawToGenerator() {  // raw I420 -> VideoFrame -> <video>
    const writer = generatorWriter();
    const colorSpace = { primaries: 'smpte170m', transfer: 'smpte170m', matrix: 'smpte170m', fullRange: false };
    const ws = new WebSocket(`ws://${location.host}/ws`);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => { B.ready = true; };
    ws.onmessage = async ev => {
      const head = new Uint32Array(ev.data, 0, 2), w = head[0], h = head[1];
      const frame = new VideoFrame(new Uint8Array(ev.data, 8), {
        format: 'I420', codedWidth: w, codedHeight: h, timestamp: Math.round(performance.now() * 1000), colorSpace });
      await writer.write(frame);  // the track takes the frame over and closes it
      ws.send('a');
    };
  }

  function canvasFrameSink() {
    canvas.style.display = 'block';
    const ctx = canvas.getContext('2d', { alpha: false });
    return frame => {
      const w = frame.displayWidth, h = frame.displayHeight;
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      ctx.drawImage(frame, 0, 0);
      frame.close();
      shown(canvas, w, h);
    };
  }

  function vp8Decoded(toCanvas) {  // the clerk's VP8, untouched by the kiosk -> WebCodecs -> <video> or canvas
    let output;
    if (toCanvas) {
      output = canvasFrameSink();
    } else {
      const writer = generatorWriter();
      output = frame => writer.write(frame);
    }
    const decoder = new VideoDecoder({ output, error: e => B.errors.push('decoder: ' + e) });
    decoder.configure({ codec: 'vp8', optimizeForLatency: true });
    let haveKey = false;
    const ws = new WebSocket(`ws://${location.host}/ws`);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => { B.ready = true; };
    ws.onmessage = ev => {
      const head = new Uint32Array(ev.data, 0, 2), key = (head[0] & 1) === 1;
      if (!haveKey && !key) return;  // the kiosk asked the clerk for a key frame; it comes soon
      haveKey = true;
      decoder.decode(new EncodedVideoChunk({ type: key ? 'key' : 'delta', timestamp: Math.round(head[1] / 0.09),
                                             data: new Uint8Array(ev.data, 8) }));
    };
  }

  // -- JPEG over a WebSocket, and MJPEG into an <img> ------------------------------
  function jpegOverWebSocket() {
    canvas.style.display = 'block';
    const ctx = canvas.getContext('2d', { alpha: false });
    const ws = new WebSocket(`ws://${location.host}/ws`);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => { B.ready = true; };
    ws.onmessage = async ev => {
      const bitmap = await createImageBitmap(new Blob([ev.data], { type: 'image/jpeg' }));
      if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
        canvas.width = bitmap.width; canvas.height = bitmap.height;
      }
      ctx.drawImage(bitmap, 0, 0);
      shown(canvas, bitmap.width, bitmap.height);
      bitmap.close();
      ws.send('a');
    };
  }

  function mjpegImage() {
    // An <img> with multipart/x-mixed-replace has no per-frame event: look at the clock's
    // last row (the millisecond bits) on every animation frame and count a frame when it changes.
    img.style.display = 'block';
    img.src = '/mjpeg';
    B.ready = true;
    const probe = document.createElement('canvas');
    const pctx = probe.getContext('2d', { willReadFrequently: true });
    let last = null;
    const tick = ts => {
      requestAnimationFrame(tick);
      if (!img.naturalWidth) return;
      const w = img.naturalWidth, h = img.naturalHeight, c = cellSize(w);
      if (probe.width !== 16 * c) { probe.width = 16 * c; probe.height = 1; }
      pctx.drawImage(img, c, 3 * c + (c >> 1), 16 * c, 1, 0, 0, 16 * c, 1);
      const row = pctx.getImageData(0, 0, 16 * c, 1).data;
      let sig = '';
      for (let i = 0; i < 16; i++) sig += row[4 * (i * c + (c >> 1)) + 1] > 128 ? '1' : '0';
      if (sig !== last) { last = sig; shown(img, w, h, performance.timeOrigin + ts); }
    };
    requestAnimationFrame(tick);
  }

  // -- WebRTC into a <video> ------------------------------------------------------
  function watchVideo() {
    video.style.display = 'block';
    const onFrame = (t, meta) => {
      shown(video, meta.width, meta.height, performance.timeOrigin + t);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  function newPeer(lowLatency) {
    const pc = new RTCPeerConnection({ iceServers: [] });  // never a public STUN server
    pc.ontrack = ev => {
      if (lowLatency) ev.receiver.jitterBufferTarget = 0;  // loopback: nothing to smooth out
      video.srcObject = new MediaStream([ev.track]);
    };
    B.pc = pc;
    return pc;
  }

  const gathered = pc => pc.iceGatheringState === 'complete' ? Promise.resolve() : new Promise(resolve => {
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
  });

  async function webrtcFromKiosk() {  // (c): the kiosk re-encodes and answers our offer
    const pc = newPeer(true);
    pc.addTransceiver('video', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const res = await fetch('/offer', { method: 'POST', body: pc.localDescription.sdp });
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    watchVideo();
    B.ready = true;
  }

  function webrtcFromClerk() {  // (d): the clerk's peer offers to us directly; the bench relays
    const pc = newPeer(false);
    B.answer = async sdp => {
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      return pc.localDescription.sdp;
    };
    watchVideo();
    B.ready = true;
  }

  async function shippedFeed() {  // appliance/kiosk/static/clerk-video.js, as the kiosk page uses it
    const module = await import('/static/clerk-video.js');
    watchVideo();
    module.attach(video, canvas);
    B.ready = true;
  }

  const modes = {
    baseline: () => { B.ready = true; },
    feed: shippedFeed,
    'raw-webgl': () => rawOverWebSocket(webglRenderer()),
    'raw-2d': () => rawOverWebSocket(putImageDataRenderer()),
    'raw-videoframe': () => rawOverWebSocket(videoFrameRenderer()),
    'raw-generator': rawToGenerator,
    'vp8-ws': () => vp8Decoded(false),
    'vp8-ws-canvas': () => vp8Decoded(true),
    'jpeg-ws': jpegOverWebSocket,
    'mjpeg-http': mjpegImage,
    'webrtc-vp8': webrtcFromKiosk,
    direct: webrtcFromClerk,
  };
  try {
    Promise.resolve(modes[mode]()).catch(e => B.errors.push(String(e)));
  } catch (e) {
    B.errors.push(String(e));
  }
})();
