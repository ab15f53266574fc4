"""Backends: the services a target runs against and the fault proxy in front of them."""
