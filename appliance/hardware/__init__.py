"""Hardware access for the appliance (camera, microphone, ...)."""
