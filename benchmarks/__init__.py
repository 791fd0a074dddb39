"""Benchmarks of uitpas_async against the physical limit and against baselines.

Run them with ``python -m benchmarks``; see ``benchmarks/README.md``.
"""
