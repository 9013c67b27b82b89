"""Undersigned: a registry of open letters, their signatories and their recipients."""
