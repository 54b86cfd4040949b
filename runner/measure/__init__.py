"""Measurement, host side: staging the in-build code, reading what the probe and the leak driver
wrote, and assembling one ``Run`` from a backend's raw readings (``assemble``)."""
