"""Process plumbing shared by the exporter, the bridge and the simulator.

Each of those three serves HTTP and reads durations from configuration, and the exporter and
the bridge build prometheus-client metrics from catalogue specs; this package holds the one
implementation of each so that their behaviour (error wording, bound-address logging, cleanup
after a failed start, metric names) cannot drift apart. It imports only the pure-data
``catalogue``, so every package may use it without breaking the import rules.
"""
