"""Process plumbing shared by the exporter, the bridge and the simulator.

Each of those three serves HTTP and reads durations from configuration; this package holds the
one implementation of both so that their behaviour (error wording, bound-address logging,
cleanup after a failed start) cannot drift apart. It imports nothing of ours, so every package
may use it without breaking the import rules.
"""
