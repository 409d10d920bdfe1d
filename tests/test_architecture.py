"""The library's layering, read from the source (imports inside functions count too), as
docs/architecture.md states it:

* shared modules (types, errors, units, geom, raster, files, weights) import no stage;
* no stage imports another stage; a stage's helpers never import its stage.py;
* only the orchestrator (and the public face, for photo checks) reaches into the stages;
* no import circle anywhere in pipeline/;
* every stage package has config.py (STAGE, PRESETS fast/balanced/high) and stage.py;
* `import pipeline` loads neither torch, OpenCV, pycolmap nor Streamlit.

(tests/test_webapp_layers.py checks the other side: pipeline/ never imports webapp/ or
Streamlit, and webapp/ uses only pipeline's public face.)
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "pipeline"
STAGE_PACKAGES = ("sfm", "dense", "single_view", "mesh", "texture", "export", "quality")
STAGE_MODULES = ("ingest", "segment")
SHARED = ("types", "errors", "units", "geom", "raster", "files", "weights")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file; relative ones resolved, and
    `from package import sub` counted as `package.sub` when sub is a module file."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                if _is_module(sub, root):
                    found.append((node.lineno, sub))
    return found


def _is_module(dotted: str, root: Path) -> bool:
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def stage_of(module: str) -> str | None:
    """The stage a pipeline module belongs to ('dense' for pipeline.dense.hull), else None."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "pipeline" and parts[1] in STAGE_PACKAGES + STAGE_MODULES:
        return parts[1]
    return None


def pipeline_graph(root: Path = ROOT) -> dict[str, list[tuple[int, str]]]:
    files = sorted((root / "pipeline").rglob("*.py"))
    return {module_name(f, root): [(ln, m) for ln, m in imports_of(f, root) if m.startswith("pipeline")]
            for f in files}


def layering_problems(graph: dict[str, list[tuple[int, str]]]) -> list[str]:
    bad = []
    for module, imports in graph.items():
        own = stage_of(module)
        for line, target in imports:
            other = stage_of(target)
            short = module.removeprefix("pipeline.")
            if short in SHARED and other:
                bad.append(f"{module}:{line} (shared) imports the {other} stage ({target})")
            if own and other and other != own:
                bad.append(f"{module}:{line} (the {own} stage) imports the {other} stage ({target})")
            if (own and own in STAGE_PACKAGES and target == f"pipeline.{own}.stage"
                    and module not in (f"pipeline.{own}", f"pipeline.{own}.stage")):
                bad.append(f"{module}:{line} is a helper of {own} and imports its stage.py")
            if other and not own and module not in ("pipeline.orchestrator", "pipeline"):
                bad.append(f"{module}:{line} reaches into the {other} stage; only the orchestrator may")
    return bad


def cycles(graph: dict[str, list[tuple[int, str]]]) -> list[list[str]]:
    """Import circles among pipeline modules (a package importing its own submodules is the
    package's face, not a circle, and is left out)."""
    edges = {m: sorted({t for _, t in imps if t in graph and t != m and not t.startswith(m + ".")})
             for m, imps in graph.items()}
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in edges[node]:
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for m in edges:
        if m not in state:
            visit(m, [m])
    return found


def test_stages_keep_to_their_layer():
    graph = pipeline_graph()
    assert {f"pipeline.{p}.stage" for p in STAGE_PACKAGES} <= set(graph)  # the walk found the stages
    assert layering_problems(graph) == []


def test_no_import_circle_in_the_library():
    assert cycles(pipeline_graph()) == []


def test_the_checks_can_fail(tmp_path):
    # A made-up library that breaks every rule: each must be reported.
    lib = tmp_path / "pipeline"
    for sub in ("", "dense", "texture"):
        (lib / sub).mkdir(exist_ok=True)
        (lib / sub / "__init__.py").write_text("")
    (lib / "geom.py").write_text("from .dense import hull\n")
    (lib / "report.py").write_text("def f():\n    from .texture.stage import bake\n")
    (lib / "dense" / "stage.py").write_text("from ..texture import views\n")
    (lib / "dense" / "hull.py").write_text("from .stage import x\n")
    (lib / "texture" / "stage.py").write_text("")
    (lib / "texture" / "views.py").write_text("")
    (lib / "a.py").write_text("from . import b\n")
    (lib / "b.py").write_text("def g():\n    from pipeline import a\n")
    graph = pipeline_graph(tmp_path)
    problems = "\n".join(layering_problems(graph))
    assert "pipeline.geom:1 (shared) imports the dense stage" in problems
    assert "pipeline.dense.stage:1 (the dense stage) imports the texture stage" in problems
    assert "pipeline.dense.hull:1 is a helper of dense and imports its stage.py" in problems
    assert "pipeline.report:2 reaches into the texture stage" in problems
    assert ["pipeline.a", "pipeline.b", "pipeline.a"] in cycles(graph)


@pytest.mark.parametrize("package", STAGE_PACKAGES)
def test_every_stage_package_has_config_and_stage(package):
    import importlib

    folder = PIPELINE / package
    assert (folder / "config.py").is_file() and (folder / "stage.py").is_file()
    config = importlib.import_module(f"pipeline.{package}.config")
    assert set(config.PRESETS) == {"fast", "balanced", "high"}
    assert isinstance(config.STAGE, str) and config.STAGE
    for preset in config.PRESETS.values():  # frozen: a preset can never be changed in place
        field = next(iter(preset.__dataclass_fields__))
        with pytest.raises(AttributeError):
            setattr(preset, field, getattr(preset, field))
    # The package face imports only the entry and the config.
    face = {m for _, m in imports_of(folder / "__init__.py")}
    assert face == {f"pipeline.{package}.config", f"pipeline.{package}.stage"}


def test_import_pipeline_is_light():
    code = ("import sys, pipeline, pipeline.orchestrator, pipeline.cli\n"
            "heavy = [m for m in ('torch', 'cv2', 'pycolmap', 'streamlit', 'trimesh', 'scipy') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
