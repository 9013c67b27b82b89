"""Actors (people and organisations), their identifiers and memberships; bodies and parties."""
