"""The notification bridge: intake, owner routing, de-duplication, durable outbox, delivery."""
