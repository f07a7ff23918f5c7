"""Benchmarks: ``bench/bench_<name>.py`` each with ``main(argv)``, measuring its own baseline in the same run."""
