"""Live connections: kiosk and staff-console WebSockets and the hub that routes between them."""
