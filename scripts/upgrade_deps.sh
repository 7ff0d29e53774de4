#!/usr/bin/env bash
# Re-resolve requirements.lock to the newest releases, install them into a scratch venv, and
# keep the new lock only if `pip check`, ruff and the tests pass there.
#
# Usage: scripts/upgrade_deps.sh [PYTEST_ARGS...]
#   No arguments: README's test command runs in full (python -m pytest -q -p no:cacheprovider)
#   and requirements.lock is rewritten when everything passes.
#   With pytest arguments (-k prefix, tests/methods, ...): only that selection runs, for a
#   quick look at a new resolution; the lock is then left alone, since untested pins must
#   not land in it.
#
# Environment:
#   PYTHON     interpreter for the scratch venv (default: python3)
#   KEEP_VENV  1 keeps the scratch folder (venv and new lock) for a look afterwards
#
# Your own environment is never touched: everything is installed into a venv in a mktemp
# folder, which is removed at the end. uv resolves (it must be on PATH); pip installs, as
# README does. torch stays at the version [tool.uv] constraint-dependencies pins in
# pyproject.toml, the release whose CPU wheel we install.
set -euo pipefail

cd "$(dirname "$0")/.."
LOCK=requirements.lock
# The lock covers the Python we test on and newer; keep in step with the header's command.
LOCK_PYTHON=3.11
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0

say() { printf '==> %s\n' "$*"; }
die() { printf 'upgrade_deps: %s\n' "$*" >&2; exit 1; }

command -v uv >/dev/null || die "uv not found on PATH (pip install uv)"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON)"
[[ -f $LOCK ]] || die "$LOCK not found in $(pwd)"

scratch=$(mktemp -d -t autopeft-deps.XXXXXX)
step="start"
finish() {
    local rc=$?
    if [[ $rc -ne 0 ]]; then
        printf 'upgrade_deps: FAILED while %s; %s is unchanged\n' "$step" "$LOCK" >&2
    fi
    if [[ ${KEEP_VENV:-0} == 1 ]]; then
        printf 'upgrade_deps: kept %s\n' "$scratch" >&2
    else
        rm -rf "$scratch"
    fi
}
trap finish EXIT
new="$scratch/requirements.lock"

step="resolving"
say "resolving the newest releases (uv pip compile --upgrade)"
# To stdout, so that the header names the command and no scratch path. fewest: one version
# of a package for every Python the lock covers, so newer Pythons get what was tested here.
uv pip compile pyproject.toml --extra test --extra bench --universal --python-version "$LOCK_PYTHON" \
    --fork-strategy fewest --upgrade --quiet >"$new"

say "version changes ($LOCK -> new resolution):"
"$PYTHON" - "$LOCK" "$new" <<'EOF'
import re
import sys


def pins(path):
    """{name: [(version, marker)]}: a universal lock may pin a name once per marker."""
    found = {}
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)(?:\s*;\s*(.*))?$", line.strip())
        if m:
            name = re.sub(r"[-_.]+", "-", m[1]).lower()
            found.setdefault(name, []).append((m[2], m[3] or ""))
    return {name: sorted(v) for name, v in found.items()}


def show(entries):
    return " | ".join(v + (f" ; {mk}" if mk else "") for v, mk in entries) or "(none)"


old, new = pins(sys.argv[1]), pins(sys.argv[2])
changes = 0
for name in sorted(old.keys() | new.keys()):
    before, after = old.get(name, []), new.get(name, [])
    if before == after:
        continue
    changes += 1
    if len(before) == len(after) == 1 and before[0][1] == after[0][1]:
        marker = f"  ({before[0][1]})" if before[0][1] else ""
        print(f"    {name}: {before[0][0]} -> {after[0][0]}{marker}")
    else:
        print(f"    {name}: {show(before)} -> {show(after)}")
print(f"    {changes} change(s)" if changes else "    none: the lock is up to date")
EOF

torch_pin=$(grep -E '^torch==' "$new" | head -n1 | sed -E 's/^torch==([^ ;]+).*/\1/')
[[ -n $torch_pin ]] || die "the new resolution has no torch pin"

step="creating the scratch venv"
say "scratch venv in $scratch/venv ($("$PYTHON" --version 2>&1))"
"$PYTHON" -m venv "$scratch/venv"
vpy="$scratch/venv/bin/python"

step="installing"
# As README: torch first (torch==$torch_pin is the CPU wheel here), then the package, both
# through the new lock. PYTHONPATH is dropped so that only the venv's packages are seen.
say "installing torch==$torch_pin, then -e '.[test,bench]', through the new lock"
env -u PYTHONPATH "$vpy" -m pip install -q -c "$new" "torch==$torch_pin"
env -u PYTHONPATH "$vpy" -m pip install -q -c "$new" -e '.[test,bench]'

step="running pip check"
say "pip check"
env -u PYTHONPATH "$vpy" -m pip check

step="running ruff"
say "ruff check autopeft tests scripts"
env -u PYTHONPATH "$scratch/venv/bin/ruff" check autopeft tests scripts

step="running the tests"
say "python -m pytest -q -p no:cacheprovider $*"
env -u PYTHONPATH "$vpy" -m pytest -q -p no:cacheprovider "$@"

step="updating $LOCK"
if [[ $# -gt 0 ]]; then
    say "PASSED a partial run (pytest $*); $LOCK left alone: run without arguments to update it"
elif cmp -s <(grep -v '^#' "$LOCK") <(grep -v '^#' "$new"); then
    say "PASSED; $LOCK already holds this resolution"
else
    cp "$new" "$LOCK"
    say "PASSED; $LOCK updated: review and commit it"
fi
