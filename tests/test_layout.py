"""The import graph of docs/architecture.md, checked on the source.

Every module of the installed packages is read (not imported) and each of
its imports of tickroom's own code is held to the arrows the page draws:
the packages depend one way, server/'s subpackages form layers that only
import downwards, nothing imports the node's composition root or the CLI,
and no import of tickroom's code hides inside a function (which is how an
import cycle is usually papered over).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = ("protocol", "simulation", "server", "client", "loadtest")

# Which top-level parts each part may import (besides itself). "root" is
# tickroom/__init__.py and the modules beside it (tickroom.percentiles, the
# test kit tickroom.testing, which runs a whole node and so imports any part).
ALLOWED_PARTS = {
    "protocol": {"root"},
    "simulation": {"root"},
    "server": {"root", "protocol", "simulation"},
    "client": {"root", "protocol"},
    "loadtest": {"root", "protocol", "client"},
}
# What may not be imported at all by a part, whatever the arrows say:
# protocol is sans-IO, simulation is pure numpy counting ticks.
FORBIDDEN_THIRD_PARTY = {
    "protocol": {"trio", "socket", "ssl", "redis", "trio_websocket", "time"},
    "simulation": {"trio", "socket", "ssl", "redis", "msgpack", "time"},
}
# The benchmark of the simulation times its steps; the game code reads no clock.
CLOCK_READERS = {"tickroom.simulation.bench"}
# server/'s subpackages as layers: each imports only the layers before it.
# node.py (the composition root), config.py and cli/ import anything;
# nothing in a layer imports them.
SERVER_LAYERS = ("rooms", "transport", "cluster", "ops", "control")
SERVER_TOP = {"node", "config", "cli", "__main__"}


@dataclass(frozen=True)
class Import:
    source: str  # dotted name of the importing module, e.g. tickroom.server.rooms.room
    target: str  # dotted name imported, e.g. tickroom.protocol.codec
    line: int
    in_function: bool


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts and parts[0] == "tickroom":  # tickroom/ itself: the root and its shared modules
        return ".".join(parts)
    return ".".join(["tickroom", *parts])


def source_files() -> list[Path]:
    files = [REPO / "tickroom" / "__init__.py", *sorted((REPO / "tickroom").glob("[!_]*.py"))]
    files += sorted((REPO / "tickroom" / "testing").rglob("*.py"))  # the test kit: a real package, not a link
    for top in PACKAGE_DIRS:
        files += sorted((REPO / top).rglob("*.py"))
    return files


def imports_of(path: Path) -> list[Import]:
    source = module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend(Import(source, alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = source.split(".") if is_package else source.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                for alias in child.names:
                    # `from pkg import module` imports the module
                    found.append(Import(source, f"{target}.{alias.name}", child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def part_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "tickroom":
        return "third-party"
    if len(parts) == 1 or parts[1] not in PACKAGE_DIRS:
        return "root"
    return parts[1]


def server_unit(module: str) -> str | None:
    """The server layer or top-level module a tickroom.server module is in."""
    parts = module.split(".")
    if len(parts) < 3 or parts[:2] != ["tickroom", "server"]:
        return None
    return parts[2]


ALL_IMPORTS = [imp for path in source_files() for imp in imports_of(path)]
OWN_IMPORTS = [imp for imp in ALL_IMPORTS if part_of(imp.target) != "third-party"]


def describe(imports: list[Import]) -> str:
    return "\n".join(f"{imp.source}:{imp.line} imports {imp.target}" for imp in imports)


def test_the_source_is_found() -> None:
    assert len(source_files()) > 60
    assert any(imp.target.startswith("tickroom.protocol") for imp in OWN_IMPORTS)


def test_own_code_is_imported_by_its_installed_name() -> None:
    generic = [imp for imp in ALL_IMPORTS if imp.target.split(".")[0] in PACKAGE_DIRS]
    assert not generic, "import tickroom.<part>, never the bare folder name:\n" + describe(generic)


@pytest.mark.parametrize("part", sorted(ALLOWED_PARTS))
def test_packages_depend_one_way(part: str) -> None:
    wrong = [
        imp
        for imp in OWN_IMPORTS
        if part_of(imp.source) == part and part_of(imp.target) not in ALLOWED_PARTS[part] | {part}
    ]
    assert not wrong, describe(wrong)


@pytest.mark.parametrize("part", sorted(FORBIDDEN_THIRD_PARTY))
def test_protocol_and_simulation_do_no_io(part: str) -> None:
    wrong = [
        imp
        for imp in ALL_IMPORTS
        if part_of(imp.source) == part
        and imp.target.split(".")[0] in FORBIDDEN_THIRD_PARTY[part]
        and not (imp.target == "time" and imp.source in CLOCK_READERS)
    ]
    assert not wrong, describe(wrong)


def test_server_layers_import_only_downwards() -> None:
    wrong = []
    for imp in OWN_IMPORTS:
        source, target = server_unit(imp.source), server_unit(imp.target)
        if source not in SERVER_LAYERS or target is None or target == source:
            continue
        allowed = set(SERVER_LAYERS[: SERVER_LAYERS.index(source)])
        if target not in allowed:
            wrong.append(imp)
    assert not wrong, describe(wrong)


def test_the_room_imports_nothing_of_the_transport_cluster_control_or_operations() -> None:
    wrong = [
        imp
        for imp in OWN_IMPORTS
        if server_unit(imp.source) == "rooms" and server_unit(imp.target) not in (None, "rooms")
    ]
    assert not wrong, describe(wrong)


def test_no_import_of_own_code_inside_a_function() -> None:
    lazy = [imp for imp in OWN_IMPORTS if imp.in_function]
    assert not lazy, "imports of tickroom's code belong at the top of the module:\n" + describe(lazy)


def test_nothing_is_imported_twice_under_two_names() -> None:
    """The root re-exports; every other module is one file under one name."""
    names = [module_name(path) for path in source_files()]
    assert len(names) == len(set(names))


def test_no_part_imports_the_test_kit() -> None:
    """tickroom.testing runs a whole node for game authors' tests: it may
    import any part, so no part may import it back."""
    wrong = [
        imp
        for imp in OWN_IMPORTS
        if imp.target.startswith("tickroom.testing") and not imp.source.startswith("tickroom.testing")
    ]
    assert not wrong, describe(wrong)
