"""The layout's rules, read off the source: who may import whom, no cycles, no huge modules.

Layers, top to bottom: entry points (`ferry.cli`) -> HTTP (`handlers`) -> composition root
(`ferry.services`) -> domain (`ferry.accounts`, `ferry.password_policy`, `ferry.files`,
`ferry.login_throttle`, `ferry.downloads`, `ferry.chat`, `ferry.events`,
`ferry.webhooks`) -> storage (`storage`) -> kernel (`ferry.kernel`).
`ferry.ops` (telemetry, memory tuning) sits beside the domain and is wired in from the
composition root and the layers above it only. `ferry.client` is a separate program.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ferry", "handlers", "storage")
MAX_LINES = 600

LAYERS = {
    "kernel": 0,
    "storage": 1,
    "domain": 2,
    "ops": 2,
    "composition": 3,
    "http": 4,
    "entry": 5,
}
DOMAIN = (
    "ferry.accounts",
    "ferry.password_policy",
    "ferry.files",
    "ferry.login_throttle",
    "ferry.downloads",
    "ferry.chat",
    "ferry.events",
    "ferry.webhooks",
)
NETWORK = ("socket", "ssl", "http", "urllib.request", "urllib3", "requests", "httpx")
WEB_FRAMEWORKS = ("connexion", "starlette")


def _within(module: str, *prefixes: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def layer_of(module: str) -> str | None:
    if _within(module, "ferry.kernel"):
        return "kernel"
    if _within(module, "storage"):
        return "storage"
    if _within(module, *DOMAIN):
        return "domain"
    if _within(module, "ferry.ops"):
        return "ops"
    if module == "ferry.services":
        return "composition"
    if _within(module, "handlers"):
        return "http"
    if _within(module, "ferry.cli"):
        return "entry"
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path) -> set[str]:
    """Every module the file imports at run time (annotations-only imports left out)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            skipped.update(id(child) for inner in node.body for child in ast.walk(inner))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from package import module` imports the module.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(path): path for path in source_files()}


def project_imports(path: Path) -> set[str]:
    return {name for name in imports_of(path) if name in MODULES}


def external_imports(path: Path) -> set[str]:
    return {name for name in imports_of(path) if name.split(".")[0] not in PACKAGES}


def violations(rule) -> list[str]:
    found = []
    for module, path in MODULES.items():
        for imported in sorted(project_imports(path) | external_imports(path)):
            reason = rule(module, imported)
            if reason:
                found.append(f"{module} imports {imported}: {reason}")
    return found


def test_the_rules_see_the_whole_tree():
    expected = {"ferry.kernel.errors", "storage.store", "handlers.app", "ferry.cli.main"}
    assert expected <= set(MODULES)
    assert "ferry.kernel.errors" in project_imports(MODULES["handlers.errors"])
    assert "connexion" in {n.split(".")[0] for n in external_imports(MODULES["handlers.app"])}


def test_dependencies_point_down_the_layers():
    def rule(module: str, imported: str) -> str | None:
        mine, theirs = layer_of(module), layer_of(imported)
        if imported not in MODULES or mine is None or theirs is None:
            return None
        if theirs == "ops" and mine == "domain":
            return "the domain reports through hooks; ops is wired in from the composition root"
        if mine == "ops" and theirs != "kernel" and theirs != "ops":
            return "ops depends on the kernel only"
        if LAYERS[theirs] > LAYERS[mine]:
            return f"{mine} must not depend on {theirs}"
        return None

    assert violations(rule) == []


def test_every_server_module_has_a_layer():
    unplaced = [
        module
        for module in MODULES
        if layer_of(module) is None and not _within(module, "ferry.client") and module != "ferry"
    ]
    assert unplaced == []


def test_the_kernel_imports_only_the_kernel():
    def rule(module, imported):
        if layer_of(module) == "kernel" and imported in MODULES and layer_of(imported) != "kernel":
            return "the kernel is the bottom layer"
        return None

    assert violations(rule) == []


@pytest.mark.parametrize(
    ("library", "allowed"),
    [("connexion", "handlers"), ("starlette", "handlers"), ("tinydb", "storage")],
)
def test_frameworks_stay_in_their_layer(library, allowed):
    def rule(module, imported):
        if imported.split(".")[0] == library and not _within(module, allowed):
            return f"only {allowed}/ may use {library}"
        return None

    assert violations(rule) == []


def test_the_client_imports_nothing_from_the_server_side():
    def rule(module, imported):
        if not _within(module, "ferry.client") or imported not in MODULES:
            return None
        shared = ("ferry", "ferry.kernel", "ferry.kernel.statuses")
        if _within(imported, "ferry.client") or imported in shared:
            return None
        return "the client is a separate program; it shares only the statuses"

    assert violations(rule) == []


def test_parsers_touch_no_storage_network_or_http():
    def rule(module, imported):
        if not _within(module, "ferry.chat.parsers"):
            return None
        if imported in MODULES and not _within(imported, "ferry.chat.parsers", "ferry.kernel"):
            return "parsers turn bytes into records and nothing else"
        if _within(imported, *NETWORK, *WEB_FRAMEWORKS):
            return "parsers never talk to the network"
        return None

    assert violations(rule) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
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
        for target in graph[node]:
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
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules():
    graph = {
        module: {
            imported
            for imported in project_imports(path)
            # A package's __init__ runs before its modules; importing it is not a dependency.
            if MODULES[imported].name != "__init__.py" or imported == module
        }
        - {module}
        for module, path in MODULES.items()
    }
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_too_long():
    too_long = {
        str(path.relative_to(REPO)): lines
        for path in [*source_files(), *sorted((REPO / "tests").rglob("*.py"))]
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}


def test_the_readme_layout_names_paths_that_exist():
    readme = (REPO / "README.md").read_text()
    layout = readme.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in layout.splitlines() if line.startswith("| `")]
    named = [part for row in rows for part in row.split("|")[1].split("`")[1::2]]
    assert "ferry/chat/" in named and "storage/" in named
    generated = {"data/"}
    missing = [path for path in named if path not in generated and not (REPO / path).exists()]
    assert missing == []
