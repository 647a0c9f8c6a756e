"""The metric catalogue: every metric family fluxwatch serves, as pure data.

One package with no imports of ours and no third-party imports, so that everything that names a
metric reads it from here: the exporter and the bridge build their series from these specs,
dashboards/ and alerts/ build their queries from them, and a renamed metric breaks their build
instead of a dashboard at 3 a.m.

- ``catalogue.specs``: ``MetricSpec``, the shape of one family.
- ``catalogue.exporter``: the exporter's families (per object, per cluster, self-metrics).
- ``catalogue.bridge``: the notification bridge's families and their label values.
- ``catalogue.controllers``: the Flux controllers' own metrics, which the dashboards and alerts
  read but fluxwatch does not serve.
- ``catalogue.prometheus``: the per-target series Prometheus writes for each scrape.
"""
