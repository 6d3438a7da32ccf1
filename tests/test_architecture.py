"""The shape of the code: imports run one way, one reader of the environment and the settings,
modules of a readable size, errors that say what to do next."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from helpers import ROOT

PACKAGE = ROOT / "src" / "restake_qa"
MAX_MODULE_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """restake_qa modules imported anywhere in ``path`` (function-level imports included)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        for candidate in candidates:
            # the deepest restake_qa module the import names
            while candidate and candidate not in modules:
                candidate = candidate.rsplit(".", 1)[0] if "." in candidate else ""
            if candidate and candidate != name:
                found.add(candidate)
    return found


def _graph() -> dict[str, set[str]]:
    graph = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}
    # importing a submodule runs its package's __init__ first: that edge is not a dependency
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}


def test_no_import_cycle_even_through_function_level_imports():
    graph = _graph()
    seen: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        seen[module] = 1
        path.append(module)
        for dep in sorted(graph.get(module, ())):
            if seen.get(dep) == 1:
                cycle = path[path.index(dep) :] + [dep]
                pytest.fail("import cycle: " + " → ".join(cycle))
            if dep not in seen:
                visit(dep)
        path.pop()
        seen[module] = 2

    for module in sorted(graph):
        if module not in seen:
            visit(module)


def test_the_pipeline_flows_one_way():
    graph = _graph()
    order = [
        "restake_qa.corpus",
        "restake_qa.chunking",
        "restake_qa.embedding",
        "restake_qa.index",
        "restake_qa.retrieval",
        "restake_qa.answer",
        "restake_qa.service",
        "restake_qa.web",
    ]
    for i, module in enumerate(order):
        later = set(order[i + 1 :])
        assert not graph[module] & later, f"{module} imports a later stage: {graph[module] & later}"
    assert "restake_qa.models" in graph["restake_qa.embedding"]
    assert not {d for d in graph["restake_qa.models"] if d.startswith("restake_qa.embedding")}


def test_only_config_reads_the_environment_and_the_settings_mapping():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text("utf-8")
        if path.name != "config.py" and re.search(r"os\.environ|os\.getenv", text):
            offenders.append(f"{path.name}: reads the environment")
        if path.name != "config.py" and "settings.get(" in text:
            offenders.append(f"{path.name}: settings.get(")
    assert not offenders, offenders


def test_no_module_is_too_long_to_read():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text("utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules by concern: {long}"


def test_library_errors_derive_from_one_base_that_the_cli_and_api_map():
    from restake_qa import errors

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert all(issubclass(c, errors.RestakeQAError) for c in classes)
    assert all(400 <= c.status < 600 and re.fullmatch(r"[a-z_]+", c.code) for c in classes)


def test_a_library_error_is_one_line_in_the_cli_and_the_error_shape_in_the_api(tmp_path):
    from click.testing import CliRunner

    from restake_qa import create_app
    from restake_qa.cli import main

    result = CliRunner().invoke(main, ["build", "--corpus", str(tmp_path / "nowhere"), "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and result.exception is not None
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: corpus folder") and "RESTAKE_QA_CORPUS_DIR" in lines[0]

    from restake_qa.embedding import HashEmbedder

    app = create_app({"data_dir": str(tmp_path / "empty")}, embedder=HashEmbedder())
    response = app.test_client().get("/api/sections")  # IndexLoadError → 503 index_unavailable
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "index_unavailable"
    assert "restake-qa build" in response.get_json()["error"]["message"]
