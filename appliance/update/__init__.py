"""The unit's update agent: central offers a signed RAUC bundle, the unit installs it into its other
root slot, boots it once for a trial and keeps it only when its health check passes there.

    agent.py    takes ``update.offer``/``update.withdraw``, waits for its window, installs, reboots,
                reports ``update.status``
    window.py   when the unit may install and restart (never in a visit; office hours)
    fetch.py    the loopback HTTP server RAUC streams the bundle from (Range, resume, bandwidth cap)
    marker.py   ``data_dir/update.json``: what the agent did, across reboots
    trial.py    on start: trial boot, commit or roll back, and the outcome to report
    slots.py    the SlotBackend interface; rauc.py (the real one), fake_slots.py (U-Boot + RAUC in a file)

docs/updates.md tells the whole story; protocol/updates.py names the states and faults.
"""
