"""Which code may import which, read from the source (so imports inside functions count too):
the library never imports the web app or Streamlit, and the web app uses only the library's
public face (`import pipeline` / `from pipeline import X`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, `from pipeline import cli` as 'pipeline.cli'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if node.module == "pipeline":
                found += [(node.lineno, f"pipeline.{alias.name}") for alias in node.names]
    return found


def _sources(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert len(files) > 5, files  # the walk found the package
    return files


def test_the_library_never_imports_the_web_app_or_streamlit():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {module}"
           for path in _sources("pipeline") for line, module in _imports(path)
           if module.split(".")[0] in ("webapp", "streamlit")]
    assert bad == []


def test_the_web_app_uses_only_the_pipelines_public_face():
    import pipeline

    public = {f"pipeline.{name}" for name in pipeline.__all__}
    allowed = {"pipeline", *public}
    bad = []
    for path in _sources("webapp"):
        for line, module in _imports(path):
            if not module.startswith("pipeline"):
                continue
            # The console script builds on the library's own command line (its `make`).
            if module == "pipeline.cli" and path == ROOT / "webapp" / "cli.py":
                continue
            if module not in allowed:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert bad == []


def test_the_check_sees_private_imports(tmp_path):
    # The rule above must be able to fail: private modules are reported as such.
    probe = tmp_path / "probe.py"
    probe.write_text("from pipeline.units import format_size\nimport pipeline.ingest\nfrom pipeline import KnownSize\n"
                     "def later():\n    import webapp.library\n")
    assert [m for _, m in _imports(probe)] == [
        "pipeline.units", "pipeline.ingest", "pipeline", "pipeline.KnownSize", "webapp.library"]
