"""The house plan holds: the import contracts pass, fail on a violation, and no file-level cycle.

The contracts live in pyproject.toml ([tool.importlinter]) and run in `make lint`; these tests run
them too, and show that each kind of violation is caught rather than trusting a green run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).parents[1]
PRODUCT = ("agent", "tools", "audit", "runbooks")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_import_contracts_hold() -> None:
    finished = lint_imports(ROOT)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "BROKEN" not in finished.stdout
    assert "Contracts: 5 kept, 0 broken." in finished.stdout


@pytest.fixture()
def house(tmp_path: Path) -> Path:
    """A copy of the packages and the contracts, to break on purpose."""
    for package in (*PRODUCT, "sandbox"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(
    ("module", "statement", "contract", "chain"),
    [
        (
            "tools/logs/leak.py",
            "from agent.settings import Settings\n",
            "tools, audit and runbooks never import the service (agent) BROKEN",
            "tools.logs.leak -> agent.settings",
        ),
        (
            "agent/graph/nodes/leak.py",
            "import sandbox.stack\n",
            "The product never imports the harness (emulators, demo, eval) or the tests BROKEN",
            "agent.graph.nodes.leak -> sandbox.stack",
        ),
        (
            "agent/graph/nodes/leak.py",
            "from agent.api.deps import AppState\n",
            "agent.graph never imports the API (app, routes, pages) or the CLI BROKEN",
            "agent.graph.nodes.leak -> agent.api.deps",
        ),
        (
            "agent/graph/nodes/leak.py",
            "from agent.approvals.routes import router\n",
            "agent.graph never imports the API (app, routes, pages) or the CLI BROKEN",
            "agent.graph.nodes.leak -> agent.approvals.routes",
        ),
        (
            "audit/leak.py",
            "import tools.result\n",
            "audit imports no adapter (tools) BROKEN",
            "audit.leak -> tools.result",
        ),
        (
            "tools/pager/leak.py",
            "import tools.chat.slack\n",
            "stands alone",
            "tools.pager.leak -> tools.chat.slack",
        ),
    ],
)
def test_a_deliberate_violation_breaks_its_contract(
    house: Path, module: str, statement: str, contract: str, chain: str
) -> None:
    assert lint_imports(house).returncode == 0  # the copy holds, as the repository does
    (house / module).write_text(statement)

    finished = lint_imports(house)

    assert finished.returncode == 1, finished.stdout
    broken = finished.stdout.split("Broken contracts", 1)[-1]
    assert contract in finished.stdout
    assert chain in broken


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Return the modules that import each other in a loop (strongly connected, size > 1)."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & graph.modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            loop = []
            while True:
                member = stack.pop()
                loop.append(member)
                if member == module:
                    break
            if len(loop) > 1:
                found.append(sorted(loop))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_no_file_of_the_product_imports_itself_through_others() -> None:
    graph = grimp.build_graph(*PRODUCT, exclude_type_checking_imports=True)
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_loop_when_there_is_one() -> None:
    graph = grimp.build_graph(*PRODUCT, exclude_type_checking_imports=True)
    graph.add_import(importer="agent.settings", imported="agent.wiring")

    assert any({"agent.settings", "agent.wiring"} <= set(loop) for loop in cycles(graph))
