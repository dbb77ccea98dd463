"""Shared infrastructure: settings, model factories and process-wide resources."""
