"""The appliance's part of the fleet: the state of its devices and the health it reports to central."""
