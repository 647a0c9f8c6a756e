"""Grafana dashboards generated with grafanalib from the exporter's metric catalogue."""
