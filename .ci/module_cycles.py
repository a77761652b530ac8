#!/usr/bin/env python3
"""Import circles in a `cargo modules dependencies --layout dot` graph (docs/ARCHITECTURE.md).

Reads the graph on stdin, prints every circle of "uses" edges (a strongly connected component
of more than one module), and exits 1 if one contains a module under a prefix given as an
argument. cargo-modules' own `--acyclic` is no use here: it also counts a type and its methods
as a circle.
"""
import re
import sys

edges = {}
for line in sys.stdin:
    m = re.match(r'\s*"([^"]+)" -> "([^"]+)" \[label="uses"', line)
    if m:
        edges.setdefault(m[1], set()).add(m[2])
        edges.setdefault(m[2], set())

# Tarjan's algorithm, iterative so deep module trees cannot overflow the stack.
index, low, on_stack, stack, circles = {}, {}, set(), [], []
for root in edges:
    if root in index:
        continue
    work = [(root, iter(edges[root]))]
    index[root] = low[root] = len(index)
    stack.append(root)
    on_stack.add(root)
    while work:
        v, it = work[-1]
        w = next(it, None)
        if w is None:
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    u = stack.pop()
                    on_stack.discard(u)
                    comp.append(u)
                    if u == v:
                        break
                if len(comp) > 1:
                    circles.append(sorted(comp))
        elif w not in index:
            index[w] = low[w] = len(index)
            stack.append(w)
            on_stack.add(w)
            work.append((w, iter(edges[w])))
        elif w in on_stack:
            low[v] = min(low[v], index[w])

guarded = sys.argv[1:]
bad = [c for c in circles if any(m == p or m.startswith(p + "::") for m in c for p in guarded)]
for c in circles:
    print(("FORBIDDEN " if c in bad else "") + "circle: " + " <-> ".join(c))
print(f"{len(edges)} modules, {len(circles)} circles, {len(bad)} through {' '.join(guarded) or '(nothing guarded)'}")
sys.exit(1 if bad else 0)
