"""Delivery: the outbox, change detection, the dispatcher and its error taxonomy."""
