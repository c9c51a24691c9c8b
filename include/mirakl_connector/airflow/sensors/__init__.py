"""Sensors: wait for an external system before a batch starts."""
