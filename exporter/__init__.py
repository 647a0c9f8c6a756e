"""Watches Flux objects in one or many clusters and serves fleet metrics (issue: exporter)."""
