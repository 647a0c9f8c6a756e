"""Prometheus alerting and recording rules generated from the exporter's metric catalogue."""
