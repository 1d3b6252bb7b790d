#!/usr/bin/env bash
# Sets up everything Deft needs on a fresh Debian machine, or reuses what is already there:
# system packages (as root), a virtual environment in .venv, the project and its pinned
# dependencies, and the ROS 2 interfaces that are not on PyPI. Quiet and quick when nothing
# changed (a stamp of the inputs is kept in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  xvfb xauth                                   # virtual X server for the GUI and its tests
  libxcb-icccm4 libxcb-keysyms1 libxcb-image0  # Qt's xcb platform plugin
  libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-shape0
  libegl1 libgl1 libglx-mesa0                  # OpenGL for VTK (Mesa, software)
  socat                                        # serial pseudo-terminal pairs
  cmake g++                                    # building the control_msgs interfaces
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing system packages (run as root to install): ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${DEFT_PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi

stamp_inputs() {
  shopt -s nullglob
  local files=(pyproject.toml scripts/*.sh robot/ros2/interfaces/*/*/*)
  cat "${files[@]}" | sha256sum | cut -d' ' -f1
}
want=$(stamp_inputs)
if [[ ! -f .venv/.deft-stamp || $(cat .venv/.deft-stamp) != "$want" ]]; then
  echo "setup: installing Deft and its dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,ros-build]" 2>&1 \
    | grep -v -E "^WARNING: Location .* is ignored" || true
  .venv/bin/python -c "import app, sim, robot, ui" # fail here, not later, if the install broke
  if [[ -f scripts/build_ros_interfaces.sh ]]; then
    bash scripts/build_ros_interfaces.sh
  fi
  echo "$want" > .venv/.deft-stamp
fi
