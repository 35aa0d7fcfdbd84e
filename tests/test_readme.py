"""The README never claims more than the reports: every quoted block is verbatim from its file."""

import re

from runge_bench.outputs.markdown import unwrap_markdown

from .helpers import ROOT

QUOTE = re.compile(r"<!-- quoted from (\S+) -->\n(.*?)\n<!-- end of quote -->", re.S)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_quoted_line_is_a_line_of_its_source():
    """Quotes in the README and docs/ are verbatim: each logical line (wrapped lines joined, as the
    reports wrap theirs) is a logical line of the file it names."""
    quotes = [(page, *q) for page in PAGES for q in QUOTE.findall(page.read_text())]
    assert len([q for q in quotes if q[0].name == "README.md"]) >= 3  # the three headline results
    for page, source, block in quotes:
        lines = set(unwrap_markdown((ROOT / source).read_text()))
        for line in unwrap_markdown(block):
            assert line in lines, f"{page.name} quotes a line that {source} does not hold: {line[:120]}"


def test_the_readme_is_the_front_door():
    """At most about 300 lines, in the order the front door promises, with figures before the first
    command, and no sentence about where or when the work was done instead of what it measured."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 320
    heads = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    order = ["Three results", "Install", "Quick start", "Writing a study", "Commands", "Reading a report",
             "Results per study", "Engines and performance", "Running on a cluster", "Faults", "Development"]  # fmt: skip
    assert [h for h in heads if h in order] == order
    assert text.index("![") < text.index("## Install")
    for page in PAGES:
        for phrase in ("this machine", "this session", "earlier session", "later session"):
            assert phrase not in page.read_text(), f"{page.name}: {phrase!r}"
    for link in re.findall(r"\]\(((?:results|docs|studies)/[^)#]+)\)", text):
        assert (ROOT / link).exists(), link


def test_the_python_example_runs(monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(line[4:] for line in section.splitlines() if line.startswith("    "))
    assert "api.runs(" in code
    monkeypatch.chdir(ROOT)  # "ablation" is read from results/ablation, as in the README
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert len(namespace["tanh64"]) == 10 and set(namespace["fits"].columns) >= {"x", "f", "f_true"}


def test_docs_commands_lists_every_option_of_every_command():
    """docs/commands.md says it has every command and option: each command's usage block there
    names every option `--help` shows (read from the CLI itself, so a new option fails here)."""
    import typer

    from runge_bench.cli import app

    text = (ROOT / "docs" / "commands.md").read_text()
    group = typer.main.get_command(app)
    assert len(group.commands) >= 6
    for name, command in group.commands.items():
        lines = text.splitlines()
        first = next((i for i, line in enumerate(lines) if line.startswith(f"    runge-bench {name}")), None)
        assert first is not None, f"docs/commands.md has no usage block for {name}"
        end = next((i for i in range(first + 1, len(lines)) if not lines[i].startswith("    ")), len(lines))
        section = "\n".join(lines[first:end])  # the usage block: the indented lines
        for param in command.params:
            if param.param_type_name == "option" and "--help" not in param.opts:
                long = [o for o in param.opts + param.secondary_opts if o.startswith("--")]
                assert any(o in section for o in long), f"docs/commands.md, {name}: {long} missing"
