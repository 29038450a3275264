#!/usr/bin/env python3
"""man.py - the man pages (docs/man/*.scd) and the programs' --help agree.

Every option a `--help` defines appears in the man page, and every option the
man page defines is one `--help` defines:
  casenet(1)        one "## casenet COMMAND" section per command and
                    subcommand of `casenet --help`, against `casenet COMMAND --help`
  casenet-watch(1)  OPTIONS against `casenet watch --help`
  casenetd(8)       OPTIONS against `casenetd --help`
  casenetd.conf(5)  every key of deploy/casenetd.conf
Failures name the option and the file to change.
Environment (set by ctest): CASENET_SOURCE_DIR, CASENET (the casenet
binary), CASENETD (the casenetd binary)."""
import os
import re
import subprocess
import sys

SRC = os.environ["CASENET_SOURCE_DIR"]
CASENET = os.environ["CASENET"]
CASENETD = os.environ["CASENETD"]
MAN = os.path.join(SRC, "docs", "man")
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


def compare(what, helpcmd, page, help_opts, page_opts):
    # --help is everywhere (tests/cli/help.sh); a page may name it or not
    help_opts, page_opts = help_opts - {"--help"}, page_opts - {"--help"}
    for o in sorted(help_opts - page_opts):
        failures.append("%s: option %s is in '%s --help' but not in docs/man/%s"
                        % (what, o, helpcmd, page))
    for o in sorted(page_opts - help_opts):
        failures.append("%s: option %s is in docs/man/%s but not in '%s --help'"
                        % (what, o, page, helpcmd))


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

# casenetd(8)
page = "casenetd.8.scd"
compare("casenetd", "casenetd", page, help_options(run_help([CASENETD])),
        man_options(section(read(page), "OPTIONS")))

# casenetd.conf(5): the keys of the example configuration
page = "casenetd.conf.5.scd"
keys_scd = section(read(page), "KEYS").replace("\\_", "_")
with open(os.path.join(SRC, "deploy", "casenetd.conf"), encoding="utf-8") as f:
    for line in f:
        m = re.match(r"^;? ?([a-z_]+) = ", line)
        if m and ("*%s* =" % m.group(1)) not in keys_scd:
            failures.append("casenetd.conf: key %s of deploy/casenetd.conf is not in docs/man/%s"
                            % (m.group(1), page))

for f in failures:
    print("FAIL: " + f, file=sys.stderr)
if failures:
    print("%d mismatches between the man pages and --help: change docs/man/*.scd (or the "
          "--help text) so both say the same" % len(failures), file=sys.stderr)
    sys.exit(1)
print("ok: casenet(1) %d commands, casenet-watch(1), casenetd(8), casenetd.conf(5) agree "
      "with --help and deploy/casenetd.conf" % len(expected))
