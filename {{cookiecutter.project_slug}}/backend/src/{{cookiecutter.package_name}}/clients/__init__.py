"""Calls this service makes to others: each client one module."""
