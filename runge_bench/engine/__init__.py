"""Training: the MLP, its metrics, the shared plumbing (common), the stacked maths, the reference
and batched engines, the native kernels (kernels.cpp) and the refinements after Adam. Imports the
problem layer only."""
