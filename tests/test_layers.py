"""The layers of the code, read from its imports (every import: module level, inside functions
and under TYPE_CHECKING alike). The arrows are drawn in `bot/__init__.py`:

    service -> delivery -> telegram -> domain -> core,   each of them -> storage
    handlers -> telegram, domain, core, storage;          storage -> storage only

A module may import its own layer and the layers its arrows reach, never the other way, and
no two modules may import each other through any chain."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "storage")

# What each layer may import (its own layer included).
MAY_IMPORT: dict[str, set[str]] = {
    "core": {"core"},
    "domain": {"core", "domain", "storage"},
    "telegram": {"core", "domain", "telegram", "storage"},
    "delivery": {"core", "domain", "telegram", "delivery", "storage"},
    "service": {"core", "domain", "telegram", "delivery", "service", "handlers", "storage"},
    "handlers": {"core", "domain", "telegram", "handlers", "storage"},
    "storage": {"storage"},
    "entry": {"core", "service"},  # bot/__main__.py: reads the settings and the pack, runs
    "package": {"core"},  # bot/__init__.py: a docstring
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "bot":
        if len(parts) == 1:
            return "package"
        if parts[1] == "__main__":
            return "entry"
        return parts[1]
    return parts[0]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports_of(source: str, modules: set[str]) -> Iterator[tuple[str, int]]:
    """The project modules a source imports, with the line of each import."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _resolve(alias.name, None, modules, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield from _resolve(node.module, alias.name, modules, node.lineno)


def _resolve(
    module: str, name: str | None, modules: set[str], line: int
) -> Iterator[tuple[str, int]]:
    if module.split(".")[0] not in PACKAGES:
        return
    if name is not None and f"{module}.{name}" in modules:
        yield f"{module}.{name}", line
    elif module in modules:
        yield module, line


def violations(module: str, source: str, modules: set[str]) -> list[str]:
    """Each import of `source` (module `module`) against the arrows."""
    own = layer_of(module)
    found = []
    for target, line in imports_of(source, modules):
        theirs = layer_of(target)
        if theirs not in MAY_IMPORT[own]:
            found.append(f"{module}:{line} ({own}) imports {target} ({theirs})")
        elif _handler_imports_a_sibling(module, target):
            found.append(f"{module}:{line} imports another handler module, {target}")
    return found


def _handler_imports_a_sibling(module: str, target: str) -> bool:
    """Handler modules share screens through bot.telegram, never through each other; only
    the packages' __init__ (the routers' order) includes them."""
    if layer_of(module) != "handlers" or layer_of(target) != "handlers":
        return False
    importer_is_a_package = (ROOT / module.replace(".", "/") / "__init__.py").exists()
    target_is_a_package = (ROOT / target.replace(".", "/") / "__init__.py").exists()
    return not importer_is_a_package and not target_is_a_package


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    names = set(modules)
    return {
        name: {target for target, _ in imports_of(path.read_text("utf-8"), names)} - {name}
        for name, path in modules.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_import_follows_the_layers() -> None:
    modules = project_modules()
    names = set(modules)
    found = [
        problem
        for name, path in modules.items()
        for problem in violations(name, path.read_text("utf-8"), names)
    ]
    assert found == []


def test_no_module_imports_itself_through_a_chain() -> None:
    assert cycles(graph()) == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("bot.domain.consents", "from bot.telegram.texts.consents import consent_list_text\n"),
        ("bot.domain.consents", "from bot.telegram import keyboards\n"),
        ("bot.domain.requests.desk", "import bot.telegram.keyboards\n"),
        (
            "bot.domain.erasure",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from bot.delivery.outbox import Outbox\n",
        ),
        ("bot.core.policy", "from bot.service.config import Settings\n"),
        ("storage.models", "from bot.core.clock import Clock\n"),
        ("handlers.private.common", "from handlers.private.consents import router\n"),
        ("bot.telegram.keyboards", "def f():\n    from handlers.staff import desk\n"),
    ],
)
def test_the_check_catches_an_import_against_the_layers(module: str, source: str) -> None:
    """The test above is not vacuous: a domain module made to import bot.telegram (and the
    like, lazily or for typing only) is reported."""
    assert violations(module, source, set(project_modules())) != []


def long_parts(limit_module: int = 500, limit_handler: int = 40) -> list[str]:
    """Modules over `limit_module` lines (tests and migrations aside) and handler functions
    over `limit_handler` lines: a reader takes either in at once."""
    found = []
    for name, path in project_modules().items():
        if ".migrations." in f".{name}.":
            continue
        source = path.read_text("utf-8")
        if (lines := len(source.splitlines())) > limit_module:
            found.append(f"{name}: {lines} lines")
        if layer_of(name) != "handlers":
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit_handler:
                    found.append(f"{name}.{node.name}: {length} lines")
    return found


def test_modules_and_handlers_stay_short() -> None:
    assert long_parts() == []


def test_the_length_check_is_not_vacuous() -> None:
    assert long_parts(limit_module=100, limit_handler=10) != []


def test_the_check_catches_a_cycle() -> None:
    edges = {"bot.domain.a": {"bot.domain.b"}, "bot.domain.b": {"bot.domain.a"}, "x": set()}
    assert cycles(edges) == [["bot.domain.a", "bot.domain.b"]]
