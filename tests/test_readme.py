"""The README never claims more than the reports: every quoted block is verbatim from its file."""

import re

from .helpers import ROOT

QUOTE = re.compile(r"<!-- quoted from (\S+) -->\n(.*?)\n<!-- end of quote -->", re.S)


def test_every_quoted_line_is_a_line_of_its_source():
    readme = (ROOT / "README.md").read_text()
    quotes = QUOTE.findall(readme)
    assert len(quotes) >= 8  # the seed report's, the ablation's and the comparison's findings
    for source, block in quotes:
        lines = set((ROOT / source).read_text().splitlines())
        for line in block.splitlines():
            assert line in lines, f"README quotes a line that {source} does not hold: {line[:120]}"


def test_the_python_example_runs(monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(line[4:] for line in section.splitlines() if line.startswith("    "))
    assert "api.runs(" in code
    monkeypatch.chdir(ROOT)  # "ablation" is read from results/ablation, as in the README
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert len(namespace["tanh64"]) == 10 and set(namespace["fits"].columns) >= {"x", "f", "f_true"}
