"""Letters, their signatures, recipients, events, claims and sources."""
