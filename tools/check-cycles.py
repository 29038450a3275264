#!/usr/bin/env python3
"""check-cycles.py - fails when the broker's sources form an include or a
call cycle between files.

  tools/check-cycles.py SRC_DIR OBJ_DIR

A module is a file name without .c/.h (request.c and request.h are one
module), or, for a module split over several files, every file that
includes its private header M_impl.h (server.c, server_conn.c and
server_queue.c are the module "server"; the SQLite backend's files are
"store_sqlite"): calls among the files of one module are inside it.
Include graph: module A -> B when a file of A includes "B.h" from SRC_DIR.
Call graph: module A -> B when an object of A (in OBJ_DIR) has an undefined
symbol that an object of B defines (nm). Objects without a source in
SRC_DIR (stale ones) are ignored. Each cycle found is printed as a path;
the exit status is 1 when there is one, 0 otherwise.

The rule it keeps (docs/ARCHITECTURE.md): the loop calls the request
table, the table the handlers, the handlers the store, audit, deadlines
and batch; a lower layer hands work up through the batch or a callback,
never by calling the layer above by name.
"""
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
IMPL = "_impl"


def base(name):
    return os.path.splitext(os.path.basename(name))[0]


def modules(src):
    """Each source file's module, and each file's local includes."""
    files = [f for f in os.listdir(src) if f.endswith((".c", ".h"))]
    local = {f for f in files if f.endswith(".h")}
    incs, mod = {}, {}
    for f in files:
        with open(os.path.join(src, f), encoding="utf-8") as fh:
            incs[f] = [i for i in INCLUDE.findall(fh.read()) if i in local]
    for f in files:
        own = [base(i)[: -len(IMPL)] for i in incs[f] if base(i).endswith(IMPL)]
        b = base(f)
        mod[f] = b[: -len(IMPL)] if b.endswith(IMPL) else (own[0] if own else b)
    for i in local:
        mod.setdefault(i, base(i))
    return mod, incs


def module(name, mod):
    return mod.get(os.path.basename(name), base(name))


def include_graph(src):
    mod, incs = modules(src)
    graph = {}
    for f, included in incs.items():
        a = module(f, mod)
        graph.setdefault(a, set())
        for inc in included:
            if module(inc, mod) != a:
                graph[a].add(module(inc, mod))
    return graph


def nm_symbols(obj):
    out = subprocess.run(["nm", "-P", obj], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        sym, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(sym)
        elif kind in "TDBRCGSV":  # global definitions only (lower case = local)
            defined.add(sym)
    return defined, undefined


def call_graph(src, objdir):
    objs = {}
    for f in os.listdir(objdir):
        if f.endswith(".c.o") and os.path.exists(os.path.join(src, f[:-2])):
            objs[f[:-2]] = os.path.join(objdir, f)
    if not objs:
        sys.exit(f"check-cycles: no objects of {src} in {objdir}; build casenetd first")
    mod, _ = modules(src)
    owner, needs = {}, {}
    for c, o in objs.items():
        d, u = nm_symbols(o)
        m = module(c, mod)
        for sym in d:
            owner[sym] = m
        needs.setdefault(m, set()).update(u)
    graph = {m: set() for m in needs}
    via = {}
    for c, u in needs.items():
        for sym in sorted(u):
            d = owner.get(sym)
            if d and d != c:
                graph[c].add(d)
                via.setdefault((c, d), sym)
    return graph, via


def cycles(graph):
    """Tarjan's strongly connected components; returns (component, one
    cycle path in it) per component of more than one node."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append((frozenset(comp), path_in(graph, set(comp), min(comp))))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def path_in(graph, comp, start):
    """A shortest cycle through start inside comp (breadth first)."""
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w not in comp:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return [start]


def main():
    args = sys.argv[1:]
    if len(args) != 2:
        sys.exit(__doc__)
    src, objdir = args
    bad = 0
    for _, c in cycles(include_graph(src)):
        print("include cycle: " + " -> ".join(c))
        bad += 1
    graph, via = call_graph(src, objdir)
    for comp, c in cycles(graph):
        steps = [f"{a} ({via[(a, b)]})" for a, b in zip(c, c[1:])]
        print(f"call cycle among {', '.join(sorted(comp))}: " + " -> ".join(steps + [c[-1]]))
        bad += 1
    n_edges = sum(len(v) for v in graph.values())
    print(f"check-cycles: {len(graph)} modules, {n_edges} call edges, {bad} cycle(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
