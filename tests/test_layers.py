#!/usr/bin/env python3
"""The include rules of src/ (docs/architecture.md, "The layers"), checked.

Each file may include headers of its own layer or of the layers below it, never
one above; and no two modules (a .c with its .h) may include each other, directly
or around a circle. Run it alone (`python3 tests/test_layers.py`: prints the problems,
exits 1 if any) or through the test suite.
"""
import os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")

# What each layer may include, besides itself. Layers are matched by the
# longest prefix of the file's path under src/.
ALLOWED = {
    "core/": [],
    "server/hub": ["core/", "server/roommodes"],
    "server/roommodes": ["core/"],
    "server/operauth": ["core/"],
    "server/transport/": ["core/"],
    "server/codec": ["core/"],
    "server/addr": ["core/"],
    "server/conn": ["core/", "server/transport/", "server/codec", "server/addr"],
    "server/history": ["core/", "server/hub"],
    "server/codecs/": ["core/", "server/codec", "server/conn", "server/hub", "server/history", "server/transport/",
                       "server/roommodes", "server/operauth"],
    "server/listener": ["core/", "server/conn", "server/codec", "server/transport/"],
    "server/natterd": ["core/", "server/"],
    "server/options": ["core/", "server/conn", "server/hub", "server/codec", "server/transport/"],
    "server/reload": ["core/"],   # reload hooks: takes struct options by pointer only
    "client/": ["core/"],
    "bench/": ["core/"],
}


def layer_of(path):
    best = None
    for prefix in ALLOWED:
        if path.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


# Files that are parts of one module: the hub is hub.c plus hubmodes.c (room
# keepers), sharing the private hubroom.h.
PARTS = {"server/hubroom": "server/hub", "server/hubmodes": "server/hub"}


def module_of(path):
    stem = os.path.splitext(path)[0]
    return PARTS.get(stem, stem)


def includes():
    """{file under src/: [included paths under src/]} for every .c and .h."""
    found = {}
    for dirpath, _, files in os.walk(SRC):
        for f in files:
            if f.endswith((".c", ".h")):
                full = os.path.join(dirpath, f)
                rel = os.path.relpath(full, SRC)
                with open(full, encoding="utf-8") as fh:
                    found[rel] = re.findall(r'^\s*#\s*include\s+"([^"]+)"', fh.read(), re.M)
    return found


def problems():
    inc = includes()
    out = []
    for f, targets in sorted(inc.items()):
        layer = layer_of(f)
        if layer is None:
            out.append(f"{f}: in no layer (add it to tests/test_layers.py and docs/architecture.md)")
            continue
        for t in targets:
            if t not in inc:
                out.append(f"{f}: includes \"{t}\", which is not a path under src/")
                continue
            if module_of(t) == module_of(f) or t.startswith(layer):
                continue
            if not any(t.startswith(p) for p in ALLOWED[layer]):
                out.append(f"{f}: includes {t}, above or beside its layer ({layer})")
    # Circles between modules (a .c and its .h are one module).
    graph = {}
    for f, targets in inc.items():
        graph.setdefault(module_of(f), set()).update(module_of(t) for t in targets if module_of(t) != module_of(f))
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                out.append("circle: " + " -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return out


if __name__ == "__main__":
    p = problems()
    print("\n".join(p) if p else "layers: every include points down, no circles")
    sys.exit(1 if p else 0)


def test_includes_point_down_and_make_no_circle():
    p = problems()
    assert not p, "\n".join(p)
