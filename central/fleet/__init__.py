"""City IT's view of the kiosks: enrolment, health, settings, actions and metrics."""
