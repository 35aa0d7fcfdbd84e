"""The problem: what one run is (its config and result), the targets it fits, its data split, the
activations, the seed report's published numbers, the suite's vocabulary and its one error type.
The lowest layer: it imports nothing else of the package."""
