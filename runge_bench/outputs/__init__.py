"""Outputs: plots (drawing), figures (which a report gets), LaTeX tables, the report builder and
`show`. The top layer of the library, below only cli and api."""
