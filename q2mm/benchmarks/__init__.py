"""Helpers of ``python -m q2mm.bench``: timing statistics, machine facts, measurements, report."""
