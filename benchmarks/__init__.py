"""Speed and memory benchmarks of csood (never run as tests). ``python -m benchmarks``."""
