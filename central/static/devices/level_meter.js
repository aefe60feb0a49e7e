/* The microphone's level on a <meter>, so a citizen at home (static/home/) or a guest (static/guest/) sees
 * that they are heard before their call. The meter's marks (low, optimum) are set for this scale in
 * templates/citizen/_device_check.html. */

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
