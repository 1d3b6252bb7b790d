#!/usr/bin/env bash
# The whole suite, one pytest run per package: Taichi keeps process-wide state bound to
# the thread that initialised it, so the simulator, studio (simulation thread) and app tests
# each get fresh processes. Inside a package, test files are spread over one worker process
# per core (pytest-xdist, a file stays in one process so its fixtures are built once): most
# tests spend their time compiling kernels on one core. The ROS tests time real controller
# processes, so they run alone. Every group runs even when an earlier one fails; the exit
# status is non-zero if any group failed. Extra arguments go to every pytest run.
set -u
cd "$(dirname "$0")/.."
status=0
for group in tests/arch tests/app tests/robot tests/sim tests/ui; do
  echo "=== pytest $group"
  workers=(-n "${DEFT_TEST_WORKERS:-auto}" --dist loadfile)
  [[ $group == tests/robot || $group == tests/arch ]] && workers=()
  .venv/bin/python -m pytest "$group" "${workers[@]}" "$@" || status=1
done
exit $status
