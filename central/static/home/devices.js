/* Camera and microphone for a visit from home: ask for both, fall back to the microphone alone (camera
 * refused or missing), and measure the microphone's level for the meter. */

/** What the browser gave: {stream, video: bool, audio: bool, problem: null | 'camera' | 'none'}.
 * 'camera': no camera (refused or missing), the visit goes on with sound only; 'none': no microphone
 * either (or no way to ask for one): no video visit possible from this device. */
export async function openDevices() {
  if (!navigator.mediaDevices?.getUserMedia || typeof RTCPeerConnection === 'undefined') {
    return { stream: null, video: false, audio: false, problem: 'none' };
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 25 } },
    });
    return { stream, video: true, audio: true, problem: null };
  } catch (err) {
    console.info('camera and microphone together: %s', err.name);
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true } });
    return { stream, video: false, audio: true, problem: 'camera' };
  } catch (err) {
    console.info('microphone alone: %s', err.name);
    return { stream: null, video: false, audio: false, problem: 'none' };
  }
}

export function stopDevices(devices) {
  devices?.stream?.getTracks().forEach((track) => track.stop());
}

/** Feed meter (a <meter> 0..1) from the stream's microphone until the returned function is called. */
export function levelMeter(stream, meter) {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context || !stream?.getAudioTracks().length) return () => {};
  const context = new Context();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let frame = 0;
  const tick = () => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    // Speech sits around -30 dBFS RMS: scale so that it fills about two thirds of the bar.
    const rms = Math.sqrt(sum / samples.length);
    meter.value = Math.min(1, Math.max(0, (20 * Math.log10(rms + 1e-9) + 60) / 45));
    frame = requestAnimationFrame(tick);
  };
  context.resume().catch(() => {});
  tick();
  return () => { cancelAnimationFrame(frame); context.close().catch(() => {}); };
}
