"""Analysis: statistics on plain arrays, the report's tables, the classical baselines, generated
findings and the comparison of two stores. Imports the layers below it (problem, engine, runs)."""
