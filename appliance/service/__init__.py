"""The appliance as a long-running service: wiring, systemd integration, the view bridge."""
