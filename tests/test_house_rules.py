"""The house rules of DEVELOPERS.md that a machine can check: which side imports what, module size,
private names. The import-layer contracts themselves are checked by ``lint-imports`` (pyproject.toml)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("neurons", "circuits", "rate_bridge", "experiments")
MAX_LINES = 400


def _modules(*folders):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def _imported_in_fresh_interpreter(modules: list[str], probe: str) -> bool:
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + \
        f"print({probe!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip() == "True"


def test_torch_side_and_training_do_not_import_brian2():
    torch_side = [f"rate_bridge.burstprop.{p.stem}" for p in _modules("rate_bridge/burstprop") if p.stem != "__init__"]
    training = ["experiments.training.train", "experiments.training.reproduce", "experiments.training.checkpoints",
                "experiments.options", "experiments.cli"]
    assert len(torch_side) >= 3
    assert not _imported_in_fresh_interpreter(torch_side + training, "brian2")
    # the probe can fail: the spiking side does import it
    assert _imported_in_fresh_interpreter(["neurons.pyramidal"], "brian2")


def test_brian2_side_does_not_import_torch():
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in _modules("neurons", "circuits")]
    modules = [m.removesuffix(".__init__") for m in modules]
    assert not _imported_in_fresh_interpreter(modules, "torch")


@pytest.mark.parametrize("path", list(_modules(*PACKAGES)), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_under_400_lines(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)} has {n} lines"


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            found += [f"from {node.module} import {a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_import_of_another_modules_private_name():
    offenders = {str(p.relative_to(ROOT)): bad for p in _modules(*PACKAGES, "tests", "bench", "examples")
                 if (bad := _private_imports(p))}
    assert offenders == {}


def test_private_import_detector_finds_one(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from __future__ import annotations\nfrom neurons.pyramidal import _RESET, pyramidal_group\n")
    assert _private_imports(f) == ["from neurons.pyramidal import _RESET"]
