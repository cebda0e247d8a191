"""The benchmark suite: ``python -m bench`` (``make bench``); results in docs/benchmarks.md."""
