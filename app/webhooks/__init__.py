"""Webhooks (Standard Webhooks) and the outbox of events they are delivered from."""
