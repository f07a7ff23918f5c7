"""shared/ knows nothing of Flask or Celery: import every module with both made unimportable. And shared/ is
layered: every module belongs to a package of a rank (core 0; media and upstream 1; store 2; the jobs 3; scan and
workflows 4), and its imports of shared/ (read from the source, imports inside functions included) stay in its
own package or go to a strictly lower rank. Same-rank packages never import each other."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CORE = ("config", "errors", "files", "jobs", "keys", "partials", "prefs", "records", "redis_client", "redis_url",
         "replication", "services", "states")
#: Package (or top-level module) → (layer, rank); the longest prefix of a module's name decides.
LAYERS: dict[str, tuple[str, int]] = {
    "shared": ("core", 0),
    **{f"shared.{name}": ("core", 0) for name in _CORE},
    "shared.media": ("media", 1),
    "shared.upstream": ("upstream", 1),
    "shared.store": ("store", 2),
    "shared.downloads": ("downloads", 3),
    "shared.verify": ("verify", 3),
    "shared.previews": ("previews", 3),
    "shared.metadata": ("metadata", 3),
    "shared.library": ("library", 3),
    "shared.hygiene": ("hygiene", 3),
    "shared.scan": ("scan", 4),
    "shared.workflows": ("workflows", 4),
    "shared.uploads": ("uploads", 4),
    "shared.bulk": ("bulk", 4),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "shared").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return dict(sorted(out.items()))


def layer_of(module: str) -> tuple[str, int] | None:
    """The layer of a module: its longest listed prefix (``shared`` itself only for the package's ``__init__``)."""
    parts = module.split(".")
    for i in range(len(parts), 1 if len(parts) > 1 else 0, -1):
        found = LAYERS.get(".".join(parts[:i]))
        if found is not None:
            return found
    return None


def imports_of(module: str, source: str, known: set[str], is_package: bool = False) -> set[str]:
    """Every module of shared/ that ``module`` imports anywhere in ``source`` (``from shared.store import
    sidecar_files`` is ``shared.store.sidecar_files``; relative imports are resolved)."""
    found = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "shared")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "shared":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found


def violations(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Imports of shared/ that go up or sideways, and modules no layer claims; ``sources`` maps each module to
    (its source, whether it is a package's ``__init__``)."""
    known = set(sources)
    out = [f"{m} belongs to no layer: add its package to LAYERS" for m in known if layer_of(m) is None]
    for module, (source, is_package) in sorted(sources.items()):
        mine = layer_of(module)
        if mine is None:
            continue
        for target in sorted(imports_of(module, source, known, is_package)):
            theirs = layer_of(target)
            if theirs is None or theirs[0] == mine[0]:
                continue
            if theirs[1] >= mine[1]:
                out.append(f"{module} ({mine[0]}, rank {mine[1]}) imports {target} ({theirs[0]}, rank {theirs[1]})")
    return out


def test_shared_imports_point_down_the_layers():
    sources = {m: (p.read_text(encoding="utf-8"), p.name == "__init__.py") for m, p in _modules().items()}
    assert violations(sources) == []


def test_the_layer_check_sees_upward_and_sideways_imports_even_inside_functions():
    # Given a store module importing a job inside a function, and two same-rank jobs importing each other
    sources = {
        "shared.store.layout": ("def f():\n    from shared.downloads.job import run_download\n", False),
        "shared.downloads.job": ("from shared.store import layout\nfrom shared.previews import job\n", False),
        "shared.previews.job": ("from ..store import layout\n", False),
        "shared.previews": ("", True),
        "shared.store": ("", True),
        "shared.downloads": ("", True),
        "shared.nowhere": ("", False),
    }
    # Then both edges are reported, the downward ones (relative imports resolved) are not, nor is any unknown module
    assert sorted(violations(sources)) == [
        "shared.downloads.job (downloads, rank 3) imports shared.previews.job (previews, rank 3)",
        "shared.nowhere belongs to no layer: add its package to LAYERS",
        "shared.store.layout (store, rank 2) imports shared.downloads.job (downloads, rank 3)",
    ]


def test_shared_imports_without_flask_or_celery():
    modules = list(_modules())
    code = (
        "import sys, importlib\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('flask', 'celery', 'kombu', 'flask_sock', 'werkzeug'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
