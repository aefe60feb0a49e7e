/* The pairs of a call with guests: one RTCPeerConnection per other participant (a mesh), signalled through
 * central with rtc.* messages whose `peer` names the other end (protocol/participants.py). Used by the
 * guest's page and by the clerk's console for its pairs with guests. No texts: the pages label the tiles.
 *
 * Central says who offers: call.participant_joined with offer=true means "you offer to them". An offer may
 * come again for the same pair (the other side reloaded or restarted): the old connection is replaced. */

// Only central's ICE servers; a null username would reach the browser as the string "null".
export const rtcServers = (iceServers) => iceServers.map(({ urls, username, credential }) =>
  ({ urls, ...(username != null && { username }), ...(credential != null && { credential }) }));

export class Pairs {
  /**
   * @param visitId   the call
   * @param iceServers central's list (guest.welcome, call.assigned)
   * @param send      (message) => void, to central
   * @param onRemote  (peer, info, MediaStream) => void: media of a participant arrived (again)
   * @param onGone    (peer) => void: the pair is closed
   * @param onState   optional (peer, connectionState) => void
   */
  constructor({ visitId, iceServers, send, onRemote, onGone, onState = () => {} }) {
    Object.assign(this, { visitId, send, onRemote, onGone, onState });
    this.servers = rtcServers(iceServers);
    this.pairs = new Map(); // peer -> { pc, info, remote, early, chain }
    this.stream = null;
    let ready;
    this.ready = new Promise((resolve) => { ready = resolve; });
    this.setStream = (stream) => { this.stream = stream; ready(); };
  }

  /** call.participant_joined */
  joined(msg) {
    const info = { role: msg.role, label: msg.label };
    const old = this.pairs.get(msg.peer);
    // A live pair is kept (our console reconnected, the other side kept its connection); else start afresh.
    if (old && old.pc.connectionState === 'connected') { old.info = info; return; }
    const pair = this.#open(msg.peer, info);
    if (msg.offer) this.#step(pair, async () => {
      await pair.pc.setLocalDescription(await pair.pc.createOffer());
      this.send({ type: 'rtc.offer', visit_id: this.visitId, peer: msg.peer, sdp: pair.pc.localDescription.sdp });
    });
  }

  /** rtc.offer from `peer`: answer it, on a fresh connection if this pair had negotiated before. */
  offer(msg) {
    let pair = this.pairs.get(msg.peer);
    if (!pair || pair.pc.remoteDescription || pair.pc.localDescription) pair = this.#open(msg.peer, pair?.info ?? {});
    this.#step(pair, async () => {
      await pair.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      await pair.pc.setLocalDescription(await pair.pc.createAnswer());
      this.send({ type: 'rtc.answer', visit_id: this.visitId, peer: msg.peer, sdp: pair.pc.localDescription.sdp });
      await this.#flush(pair);
    });
  }

  /** rtc.answer from `peer` to our offer. */
  answer(msg) {
    const pair = this.pairs.get(msg.peer);
    if (!pair) return;
    this.#step(pair, async () => {
      if (pair.pc.signalingState !== 'have-local-offer') return; // a late answer to an offer we replaced
      await pair.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
      await this.#flush(pair);
    });
  }

  /** rtc.candidate from `peer`; null or "" only marks the end of its candidates. */
  candidate(msg) {
    const pair = this.pairs.get(msg.peer), c = msg.candidate;
    if (!pair || !c?.candidate) return;
    const candidate = { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex };
    this.#step(pair, () => (pair.pc.remoteDescription ? pair.pc.addIceCandidate(candidate) : pair.early.push(candidate)));
  }

  /** call.participant_left, or we removed them: close the pair. */
  left(peer) {
    const pair = this.pairs.get(peer);
    if (!pair) return;
    this.pairs.delete(peer);
    pair.pc.close();
    this.onGone(peer);
  }

  closeAll() {
    for (const peer of [...this.pairs.keys()]) this.left(peer);
  }

  #open(peer, info) {
    const old = this.pairs.get(peer);
    if (old) old.pc.close();
    const pc = new RTCPeerConnection({ iceServers: this.servers });
    const pair = { peer, pc, info, remote: new MediaStream(), early: [], chain: null };
    this.pairs.set(peer, pair);
    pc.addEventListener('icecandidate', ({ candidate: c }) => {
      if (!c?.candidate || this.pairs.get(peer) !== pair) return;
      this.send({ type: 'rtc.candidate', visit_id: this.visitId, peer,
        candidate: { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } });
    });
    pc.addEventListener('track', ({ track }) => {
      pair.remote.addTrack(track);
      if (this.pairs.get(peer) === pair) this.onRemote(peer, pair.info, pair.remote);
    });
    pc.addEventListener('connectionstatechange', () => {
      if (this.pairs.get(peer) === pair) this.onState(peer, pc.connectionState);
    });
    // Our camera and microphone go into every pair, before its offer or answer is made (sendrecv).
    pair.chain = this.ready.then(() => this.stream?.getTracks().forEach((track) => pc.addTrack(track, this.stream)));
    return pair;
  }

  // Signalling steps of a pair run one after another, once our media is ready, and only while it is current.
  #step(pair, step) {
    pair.chain = pair.chain.then(() => (this.pairs.get(pair.peer) === pair ? step() : undefined))
      .catch((err) => console.warn('signalling step failed', err));
  }

  async #flush(pair) {
    for (const candidate of pair.early.splice(0)) await pair.pc.addIceCandidate(candidate).catch(() => {});
  }
}
