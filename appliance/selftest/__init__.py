"""The self-test for the person installing the unit (held 5 s while idle, or asked by central).

One screen checks everything a unit needs: the camera picture, the microphone (with a level
meter), a test tone on the speaker that the microphone must hear (speaker, microphone and
the path between them in one check), the call button, the network, central, the clock and
the enrolment. Each item passes or fails in plain words on the kiosk page; the result goes
to central (``kiosk.selftest``) and into the unit's device book for the health report.
"""
