"""Venues: one folder per exchange adapter, and ``emulator``, the local exchange (`sigma venue`)."""
