"""The package's structure: which subpackage may import which, no import circle, a light app side.

ARCHITECTURE.md draws the dependencies one way: ``analysis`` and ``scoring`` are pure; ``registry``
knows nothing of HTTP, patching, policies or statistics; ``routing`` uses registry models; the
instrumentation uses routing and scoring; ``loop`` uses registry and analysis (and ``evals``, for the
gate at rollout start); ``evals`` (golden-set evaluations) uses registry, routing, scoring, analysis
and the instrumentation's settings; ``service`` exposes registry, loop and evals; the CLI and the
demo sit on top. The imports are read from the source (every
import, in functions too, except those under ``if TYPE_CHECKING:``), so a lazy import is no way
around a rule.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "otel_prompt_canary"
ROOT = Path(__file__).resolve().parents[1] / "src" / PACKAGE

#: Subpackage -> the subpackages it may import (top-level modules such as ``errors`` are shared).
ALLOWED: dict[str, set[str]] = {
    "analysis": set(),
    "scoring": set(),
    "registry": set(),
    "routing": {"registry"},
    "instrumentation": {"routing", "registry", "scoring"},
    "evals": {"registry", "routing", "scoring", "analysis", "instrumentation"},
    "loop": {"registry", "analysis", "evals"},
    "service": {"registry", "loop", "analysis", "evals"},
    "cli": {"registry", "routing", "instrumentation", "loop", "analysis", "service", "demo", "evals"},
    "demo": {"registry", "routing", "instrumentation", "scoring", "loop", "analysis", "service", "evals"},
}


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _runtime_imports(child))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(node)


def imports_of(module: str) -> set[str]:
    """The package's modules ``module`` imports at run time (a submodule, else the package named)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in _runtime_imports(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        found.update(t for t in targets if t in MODULES)
    found.discard(module)
    return found


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (ROOT / parts[1]).is_dir() else None


def test_subpackages_import_only_what_the_architecture_allows() -> None:
    broken = []
    for module in MODULES:
        owner = _subpackage(module)
        if owner is None:
            continue
        assert owner in ALLOWED, f"subpackage {owner} is not in the architecture's table"
        for target in imports_of(module):
            other = _subpackage(target)
            if other is not None and other != owner and other not in ALLOWED[owner]:
                broken.append(f"{module} imports {target}")
    assert broken == []


@pytest.mark.parametrize(
    ("owner", "forbidden"),
    [("registry", {"analysis", "loop", "service"}), ("loop", {"service"})],
)
def test_the_loop_stays_out_of_the_registry_and_http_out_of_the_loop(owner: str, forbidden: set[str]) -> None:
    # The two rules the loop's redesign exists for, spelled out on their own.
    assert not (ALLOWED[owner] & forbidden)
    offending = {
        (module, target)
        for module in MODULES
        if _subpackage(module) == owner
        for target in imports_of(module)
        if _subpackage(target) in forbidden
    }
    assert offending == set()


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    graph = {m: imports_of(m) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_import_circle() -> None:
    # A package's __init__ re-exporting its submodules is no circle as long as no submodule
    # imports the package back: a submodule imports its siblings by their own names.
    assert _cycles() == []


_HEAVY = ("sqlalchemy", "fastapi", "starlette", "uvicorn", "click", "yaml", "jsonschema")


def _loaded_after(code: str) -> list[str]:
    probe = (
        f"import sys\n{code}\n"
        f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({_HEAVY!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_the_application_side_loads_no_server_cli_or_database_stack() -> None:
    # A router reading a control plane that does not answer: its first read fails fast and the
    # router goes on with no state, as an application starting before its control plane would.
    code = (
        "import otel_prompt_canary, otel_prompt_canary.instrumentation\n"
        "from otel_prompt_canary import PromptRouter\n"
        "router = PromptRouter(\n"
        "    registry='http://127.0.0.1:9', initial_timeout=0.2, fallbacks={'support-bot': 'Hi'}\n"
        ")\n"
        "router.select('support-bot', unit_key='user-1')  # the fallback: no state yet\n"
        "router.close()"
    )
    assert _loaded_after(code) == []


def test_an_sqlite_registry_loads_sqlalchemy_and_nothing_else_heavy(tmp_path: Path) -> None:
    code = (
        "from otel_prompt_canary import PromptRouter\n"
        f"router = PromptRouter(registry={str(tmp_path / 'registry.db')!r}, initial_timeout=5)\n"
        "router.close()"
    )
    assert _loaded_after(code) == ["sqlalchemy"]
