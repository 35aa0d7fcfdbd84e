"""Runs: study files, plans, option checks, tasks, workers, resources, the results store, reading
it back for analysis (loading), and the throughput benchmark. Imports the problem and engine
layers."""
