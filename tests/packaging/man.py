#!/usr/bin/env python3
"""man.py - the man pages and the programs' --help agree.

The pages as built (build/man/PAGE.scd: docs/man/PAGE.scd, or PAGE.scd.in
with its "@casenetd --help-config=FORMAT@" line replaced by the option
table's entries). Every option a `--help` defines appears in the man page,
and every option the man page defines is one `--help` defines:
  casenet(1)        one "## casenet COMMAND" section per command and
                    subcommand of `casenet --help`, against `casenet COMMAND --help`
  casenet-watch(1)  OPTIONS against `casenet watch --help`
  casenetd(8)       OPTIONS against `casenetd --help`; a "*casenetd NAME*"
                    entry per subcommand its usage lines show ("casenetd NAME")
  casenetd.conf(5)  KEYS against the "[section] key" of every `casenetd --help`
                    option, and every key of deploy/casenetd.conf
casenetd's two pages must be generated (a .scd.in with its marker line), so
the option table's texts are written once. Failures name the option and the
file to change.
Environment (set by ctest): CASENET_SOURCE_DIR, CASENET_BINARY_DIR, CASENET
(the casenet binary), CASENETD (the casenetd binary)."""
import os
import re
import subprocess
import sys

SRC = os.environ["CASENET_SOURCE_DIR"]
CASENET = os.environ["CASENET"]
CASENETD = os.environ["CASENETD"]
MAN = os.path.join(os.environ["CASENET_BINARY_DIR"], "man")
GENERATED = {"casenetd.8.scd": "scdoc-flags", "casenetd.conf.5.scd": "scdoc"}
OPT = re.compile(r"--[a-z0-9][a-z0-9-]*")
failures = []


def run_help(argv):
    p = subprocess.run(argv + ["--help"], capture_output=True, text=True)
    if p.returncode != 0:
        failures.append("'%s --help' exited %d" % (" ".join(argv), p.returncode))
    return p.stdout


def help_options(text):
    """Options a --help defines: its option lines (under "options:" when it
    has that heading, else every line that starts with an option)."""
    lines = text.split("\n")
    if "options:" in lines:
        start = lines.index("options:") + 1
        end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
        lines = lines[start:end]
    opts = set()
    for line in lines:
        m = re.match(r"^\s+(?:-[A-Za-z0-9], )?(--[a-z0-9][a-z0-9-]*)", line)
        if m:
            opts.add(m.group(1))
    return opts


def man_options(scd):
    """Options a man page (section) defines: its list items, lines starting
    with a bold option (*-x*, *--long* _ARG_)."""
    opts = set()
    for line in scd.split("\n"):
        if line.startswith("*-"):
            opts.update(OPT.findall(line))
    return opts


def subcommands(text):
    lines = text.split("\n")
    if "subcommands:" not in lines:
        return []
    out = []
    for line in lines[lines.index("subcommands:") + 1:]:
        if not line.strip():
            break
        out.append(line.split()[0])
    return out


def source(page):
    """The file to edit for page, as a failure names it."""
    return "docs/man/%s%s" % (page, ".in" if page in GENERATED else "")


def compare(what, helpcmd, page, help_opts, page_opts):
    # --help is everywhere (tests/cli/help.sh); a page may name it or not
    help_opts, page_opts = help_opts - {"--help"}, page_opts - {"--help"}
    for o in sorted(help_opts - page_opts):
        failures.append("%s: option %s is in '%s --help' but not in %s"
                        % (what, o, helpcmd, source(page)))
    for o in sorted(page_opts - help_opts):
        failures.append("%s: option %s is in %s but not in '%s --help'"
                        % (what, o, source(page), helpcmd))


def read(page):
    with open(os.path.join(MAN, page), encoding="utf-8") as f:
        return f.read()


def section(scd, heading):
    """The text under a '# HEADING' up to the next '# '."""
    m = re.search(r"^# %s\n(.*?)(?=^# |\Z)" % re.escape(heading), scd, re.S | re.M)
    return m.group(1) if m else ""


# casenet(1): a section per command
page = "casenet.1.scd"
scd = read(page)
sections = dict(re.findall(r"^## casenet (.+?)\n(.*?)(?=^##? |\Z)", scd, re.S | re.M))
top = run_help([CASENET])
commands = []
in_cmds = False
for line in top.split("\n"):
    if line == "commands:":
        in_cmds = True
    elif in_cmds and not line.strip():
        break
    elif in_cmds:
        commands.append(line.split()[0])
if not commands:
    failures.append("'casenet --help' lists no commands under 'commands:'")
expected = []
for cmd in commands:
    subs = subcommands(run_help([CASENET, cmd]))
    expected += ["%s %s" % (cmd, s) for s in subs] if subs else [cmd]
for cmd in expected:
    if cmd not in sections:
        failures.append("casenet %s: no '## casenet %s' section in docs/man/%s" % (cmd, cmd, page))
        continue
    compare("casenet " + cmd, "casenet " + cmd, page,
            help_options(run_help([CASENET] + cmd.split())), man_options(sections[cmd]))
for cmd in sorted(set(sections) - set(expected)):
    failures.append("docs/man/%s has a section '## casenet %s', a command 'casenet --help' "
                    "does not list" % (page, cmd))

# casenet-watch(1)
page = "casenet-watch.1.scd"
compare("casenet watch", "casenet watch", page, help_options(run_help([CASENET, "watch"])),
        man_options(section(read(page), "OPTIONS")))

# casenetd(8) and casenetd.conf(5): generated from the option table
for page, fmt in sorted(GENERATED.items()):
    src = os.path.join(SRC, "docs", "man", page)
    marker = "@casenetd --help-config=%s@\n" % fmt
    if os.path.exists(src):
        failures.append("docs/man/%s is a hand-written copy: the page is %s.in with the line %s"
                        % (page, page, marker.strip()))
    elif marker not in open(src + ".in", encoding="utf-8").readlines():
        failures.append("docs/man/%s.in lacks its line %s (the options from the table)"
                        % (page, marker.strip()))

page = "casenetd.8.scd"
usage = run_help([CASENETD])
scd = read(page)
compare("casenetd", "casenetd", page, help_options(usage), man_options(section(scd, "OPTIONS")))
subs = set(re.findall(r"^\s*(?:usage: )?casenetd ([a-z][a-z-]*)", usage, re.M))
page_subs = set(re.findall(r"^\*casenetd ([a-z][a-z-]*)\*", scd, re.M))
for c in sorted(subs - page_subs):
    failures.append("casenetd %s: in 'casenetd --help' but %s has no entry '*casenetd %s*'"
                    % (c, source(page), c))
for c in sorted(page_subs - subs):
    failures.append("casenetd %s: %s has an entry '*casenetd %s*', a command 'casenetd --help' "
                    "does not show" % (c, source(page), c))

# casenetd.conf(5): the table's keys (--help names each as "([section] key;"),
# and those of the example configuration
page = "casenetd.conf.5.scd"
keys_scd = section(read(page), "KEYS").replace("\\_", "_")
help_keys = set(re.findall(r"\(\[[a-z]+\] ([a-z_]+);", usage))
page_keys = set(re.findall(r"^\*([a-z_]+)\* =", keys_scd, re.M))
if not help_keys:
    failures.append("'casenetd --help' names no INI key as '([section] key;'")
for k in sorted(help_keys - page_keys):
    failures.append("casenetd.conf: key %s is in 'casenetd --help' but not in %s"
                    % (k, source(page)))
for k in sorted(page_keys - help_keys):
    failures.append("casenetd.conf: key %s is in %s but not in 'casenetd --help'"
                    % (k, source(page)))
with open(os.path.join(SRC, "deploy", "casenetd.conf"), encoding="utf-8") as f:
    for line in f:
        m = re.match(r"^;? ?([a-z_]+) = ", line)
        if m and m.group(1) not in page_keys:
            failures.append("casenetd.conf: key %s of deploy/casenetd.conf is not in %s"
                            % (m.group(1), source(page)))

for f in failures:
    print("FAIL: " + f, file=sys.stderr)
if failures:
    print("%d mismatches between the man pages and --help: change docs/man/*.scd (or the "
          "--help text, or the option table in broker/config.c) so both say the same; "
          "cmake --build rebuilds the pages" % len(failures), file=sys.stderr)
    sys.exit(1)
print("ok: casenet(1) %d commands, casenet-watch(1), casenetd(8), casenetd.conf(5) (%d keys) "
      "agree with --help and deploy/casenetd.conf" % (len(expected), len(help_keys)))
