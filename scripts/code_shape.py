"""The shape of the code: functions over 60 lines and classes over 400 lines in afps_gui/.

The house's targets (issue 16) are no function over 60 lines and no class over 400; this lists
what is still over, largest first, so that the work of shrinking them can be seen. It fails
nothing yet (``--strict`` exits 1 when anything is over, for the day a test wants it).

    python scripts/code_shape.py [--top N] [--strict]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "afps_gui"
MAX_FUNCTION = 60
MAX_CLASS = 400


def measure(path: Path) -> list[tuple[str, str, int]]:
    """(kind, qualified name, lines) of every function and class in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                kind = "class" if isinstance(child, ast.ClassDef) else "function"
                name = f"{prefix}{child.name}"
                # Decorators are part of what a reader has to read: count from the first one.
                start = min([d.lineno for d in child.decorator_list] + [child.lineno])
                found.append((kind, name, child.end_lineno - start + 1))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def oversized(package: Path = PACKAGE) -> list[tuple[int, str, str]]:
    """(lines, kind, 'file:name') over the limits, largest first."""
    over = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).as_posix()
        for kind, name, lines in measure(path):
            limit = MAX_CLASS if kind == "class" else MAX_FUNCTION
            if lines > limit:
                over.append((lines, kind, f"{rel}:{name}"))
    return sorted(over, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=20, help="list at most this many (default 20)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when anything is over")
    args = parser.parse_args(argv)
    over = oversized()
    classes = [o for o in over if o[1] == "class"]
    functions = [o for o in over if o[1] == "function"]
    print(f"classes over {MAX_CLASS} lines: {len(classes)}")
    for lines, _, where in classes[: args.top]:
        print(f"  {lines:5d}  {where}")
    print(f"functions over {MAX_FUNCTION} lines: {len(functions)}")
    for lines, _, where in functions[: args.top]:
        print(f"  {lines:5d}  {where}")
    return 1 if args.strict and over else 0


if __name__ == "__main__":
    sys.exit(main())
