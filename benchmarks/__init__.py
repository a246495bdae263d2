"""Performance benchmarks of codex-login (issue 9). Run them all with ``python -m benchmarks.run``.

They are not part of the test suite: timings depend on the machine, so nothing here asserts a time. Each
benchmark measures its own baselines in the same run and reports ratios against them.
"""
