"""Remote updates, central's side: the signed bundles IT uploads and how kiosks fetch them
(``bundles``: checked on upload, stored, served with Range requests), and their rollout to the fleet.

The messages are in protocol/updates.py; the unit's side is appliance/update/.
"""
