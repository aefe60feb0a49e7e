/* Camera and microphone for a visit from home: ask for both, fall back to the microphone alone (camera
 * refused or missing). Their level meter is shared with the guest's page (static/devices/level_meter.js). */

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
