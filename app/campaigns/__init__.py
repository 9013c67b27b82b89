"""Campaigns: named groups of letters."""
