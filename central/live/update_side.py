"""The update side of the hub: offers and withdrawals to kiosks, and their ``update.status`` reports.

Which kiosk gets what is decided by the rules in central/updates/rings.py over the book in
central/updates/book.py; this module only says it to the connected kiosks. A kiosk that is not
connected hears on its next connect (``offer_update`` after its welcome and settings).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from central.live.core import HubCore
from central.live.limits import retry_after_s
from central.live.peers import KioskPeer
from central.updates.rings import Rollout
from protocol.codec import encode
from protocol.errors import ErrorCode, ProtocolError
from protocol.updates import UpdateOffer, UpdateStatus, UpdateWithdraw

log = logging.getLogger(__name__)


def offer_message(rollout: Rollout) -> UpdateOffer:
    return UpdateOffer(type="update.offer", bundle_id=rollout.bundle_id, version=rollout.version,
                       size_bytes=rollout.size_bytes, sha256=rollout.sha256, path=rollout.path,
                       max_kbit_s=rollout.max_kbit_s, window=rollout.window)


class UpdateSide(HubCore):
    def offer_update(self, peer: KioskPeer, *, only_new: bool = False) -> bool:
        """Offer the live rollout's bundle to this kiosk if the rollout wants it to have it; True if sent.
        ``only_new``: not if it was offered before (a ring opened: the ones before it have theirs)."""
        version = self.fleet.kiosks[peer.kiosk.id].version if peer.kiosk.id in self.fleet.kiosks else None
        if not only_new and (stale := self.updates.stale_for(peer.kiosk.id)) is not None:
            # Withdrawn while it was away: it hears now, before it restarts into a bundle nobody wants.
            peer.link.send(encode(UpdateWithdraw(type="update.withdraw", bundle_id=stale)))
        rollout = self.updates.offer_for(peer.kiosk.id, version, only_new=only_new)
        if rollout is None:
            return False
        peer.link.send(encode(offer_message(rollout)))
        return True

    def offer_updates(self, *, only_new: bool = False) -> int:
        """The rollout started or resumed (or, ``only_new``, a ring opened): offer to every connected kiosk
        it reaches now (that was not offered it before)."""
        sent = sum(self.offer_update(peer, only_new=only_new) for peer in list(self.kiosks.values()))
        if sent:
            log.info("update offered to %d kiosk(s)", sent)
        return sent

    def withdraw_update(self, kiosk_ids: Iterable[int] | None = None) -> int:
        """The live rollout pauses or stops: the connected kiosks it reached that are not done with it are
        told not to install (those that are offline hear nothing and get no offer on connecting)."""
        rollout = self.updates.rollout
        if rollout is None:
            return 0
        wanted = self.kiosks.keys() if kiosk_ids is None else set(kiosk_ids) & self.kiosks.keys()
        versions = {kiosk_id: self.fleet.kiosks[kiosk_id].version if kiosk_id in self.fleet.kiosks else None
                    for kiosk_id in wanted}
        told = self.updates.withdrawn_from(wanted, versions)
        frame = encode(UpdateWithdraw(type="update.withdraw", bundle_id=rollout.bundle_id))
        for kiosk_id in told:
            self.kiosks[kiosk_id].link.send(frame)
        if told:
            log.info("update withdrawn from %d kiosk(s)", len(told))
        return len(told)

    def update_status(self, peer: KioskPeer, msg: UpdateStatus) -> None:
        """A kiosk's report on a bundle it was offered. Pauses the rollout when it rolled back or refused
        the bundle for good, and withdraws the bundle from the other kiosks."""
        if wait := self.update_reports.take(peer.kiosk.id):
            seconds = retry_after_s(wait)
            raise ProtocolError(ErrorCode.RATE_LIMITED, f"too many update.status reports from this kiosk; the "
                                f"next is accepted in {seconds} s", retry_after_s=seconds)
        self.fleet.state(peer.kiosk.id).last_seen = self.fleet.clock()
        if self.updates.record(peer.kiosk.id, msg) is not None:
            self.withdraw_update()
