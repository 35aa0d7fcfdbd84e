"""`python -m runge_bench ...`, the same as the `runge-bench` command."""

from .cli import main

main()
