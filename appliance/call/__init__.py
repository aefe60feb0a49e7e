"""The kiosk's side of a call: connection to central and the aiortc peer."""
