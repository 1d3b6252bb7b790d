#!/usr/bin/env bash
# The whole suite, one pytest process per package: Taichi keeps process-wide state bound to
# the thread that initialised it, so the simulator, studio (simulation thread) and app tests
# each get a fresh process. Every group runs even when an earlier one fails; the exit status
# is non-zero if any group failed. Extra arguments go to every pytest run.
set -u
cd "$(dirname "$0")/.."
status=0
for group in tests/arch tests/app tests/robot tests/sim tests/ui; do
  echo "=== pytest $group"
  .venv/bin/python -m pytest "$group" "$@" || status=1
done
exit $status
