"""Verifying credentials: bearer tokens against the identity provider's keys."""
