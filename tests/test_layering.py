"""The package's import graph: layers import downward only, and no package imports itself back.

Read from the source (every `import` statement, top-level or inside a function), so a lazy import
cannot hide an upward edge.
"""

import ast
import os
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "xy_jax"

# Packages and the packages above them, which they must never import.
# errors is the ground floor; plan, peers and main (the programs) sit on top of everything.
TOP = {"plan", "peers", "main", "stages"}
FORBIDDEN = {
    "errors": {"*"},
    "models": {"train", "rl", "convert", "quant", "eval", "infer", "data", "weights"} | TOP,
    "data": {"models", "train", "rl", "convert", "quant", "eval", "weights"} | TOP,
    "convert": {"train", "rl", "quant", "eval", "weights"} | TOP,
    "infer": {"train", "rl", "eval"} | TOP,
    "quant": {"train", "rl", "eval", "weights"} | TOP,
    "weights": {"train", "rl", "eval"} | TOP,
    "eval": {"train", "rl"} | TOP,
    "train": {"rl"} | TOP,
    "rl": TOP,
    "plan": {"main"},
}
# The composition roots: entry points may import every layer to register the stages.
ENTRY_POINTS = {"train/__main__.py"}


def _unit(module: str) -> str:
  """'xy_jax.train.loop' -> 'train'; 'xy_jax.errors' -> 'errors'."""
  return module.split(".")[1] if module.count(".") else ""


def _imports(path: pathlib.Path) -> set[str]:
  tree = ast.parse(path.read_text(), str(path))
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out |= {a.name for a in node.names if a.name.startswith("xy_jax.")}
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      if node.module == "xy_jax":
        out |= {f"xy_jax.{a.name}" for a in node.names}
      elif node.module.startswith("xy_jax."):
        out.add(node.module)
  return out


def _graph() -> dict[str, set[str]]:
  """unit -> units it imports (entry points excluded)."""
  graph: dict[str, set[str]] = {}
  for path in PACKAGE.rglob("*.py"):
    rel = path.relative_to(PACKAGE).as_posix()
    if rel in ENTRY_POINTS:
      continue
    unit = rel.split("/")[0].removesuffix(".py")
    graph.setdefault(unit, set()).update(_unit(m) for m in _imports(path) if _unit(m) != unit)
  return graph


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_downward_only(layer):
  offending = []
  paths = [PACKAGE / f"{layer}.py"] if (PACKAGE / f"{layer}.py").exists() else (PACKAGE / layer).rglob("*.py")
  for path in paths:
    rel = path.relative_to(PACKAGE).as_posix()
    if rel in ENTRY_POINTS:
      continue
    offending += [f"{rel} imports {m}" for m in sorted(_imports(path))
                  if _unit(m) in FORBIDDEN[layer] or "*" in FORBIDDEN[layer]]
  assert not offending, offending


def test_no_import_cycle_between_units():
  graph = _graph()
  state: dict[str, int] = {}  # 1 on the stack, 2 done

  def visit(unit, stack):
    state[unit] = 1
    for nxt in sorted(graph.get(unit, ())):
      if state.get(nxt) == 1:
        raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
      if nxt not in state:
        visit(nxt, stack + [nxt])
    state[unit] = 2

  for unit in sorted(graph):
    if unit not in state:
      visit(unit, [unit])


def test_the_walk_sees_the_package():
  graph = _graph()
  assert {"models", "train", "rl", "data", "convert"} <= set(graph)
  assert "models" in graph["train"] and "train" in graph["rl"]  # real edges are found
  assert os.path.isfile(PACKAGE / "stages.py") and os.path.isfile(PACKAGE / "errors.py")
  assert {"plan", "main", "errors"} <= set(graph)
