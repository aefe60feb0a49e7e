"""A visit from home: a citizen's own browser on ``/ws/visit`` (public, no account).

It speaks the citizen side of the kiosk protocol (protocol/messages.py), and nothing else: no fleet
reports, settings or updates. Its first message from central is `welcome` (`kiosk_location` empty,
every department with its state), and `visit.request` puts it in a department's waiting room like a
kiosk visitor; clerks see such a visit with `origin` `online`. In a call with guests the browser,
like the kiosk, offers to each participant announced with `call.participant_joined` `offer` true.
"""
from __future__ import annotations

from protocol import messages as m
from protocol import participants
from protocol.messages import _by_type

HOME_TO_CENTRAL = _by_type(m.VisitRequest, m.VisitResume, m.VisitCancel, m.VisitHangup, m.RtcOffer, m.RtcCandidate,
                           m.RtcState, m.Ping)
CENTRAL_TO_HOME = _by_type(m.Welcome, m.VisitQueued, m.VisitPosition, m.VisitTransferred, m.VisitResumed,
                           m.VisitRefused, m.VisitMessageToKiosk, m.CallStart, m.CallFailed, m.RtcAnswer,
                           m.RtcCandidate, m.VisitEnded, m.Error, m.Pong, participants.ParticipantJoined,
                           participants.ParticipantLeft)
