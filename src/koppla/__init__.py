"""Koppla: storefront and back-office data into an Experience-Platform-compatible CDP."""

__version__ = "0.1.0"
