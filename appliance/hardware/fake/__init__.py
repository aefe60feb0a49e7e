"""Fake media sources standing in for the Pi camera and USB microphone in tests and the demo."""
