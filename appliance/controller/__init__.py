"""The kiosk's state machine: idle -> choosing -> consent -> waiting -> in_call -> ended -> idle."""
