"""Benchmarks run by ``make bench``; each module prints figures and ratios to a baseline."""
