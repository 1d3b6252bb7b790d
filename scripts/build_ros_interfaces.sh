#!/usr/bin/env bash
# Builds the ROS 2 interface packages that are not on PyPI (robot/ros2/interfaces/*) with
# cmake and the rosidl wheels, and installs them into the venv prefix (.venv), where rclpy
# finds them. Skipped where a ROS 2 distro provides the package (/opt/ros/*), and when the
# installed build matches the definition files (a stamp of their contents is kept).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$PWD/.venv
PY=$VENV/bin/python

# The wheels' exported CMake files name their build machine's Python and numpy include
# folders; point them at this venv's before configuring (idempotent).
py_inc=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
np_inc=$("$PY" -c "import numpy; print(numpy.get_include())")
fix_exported_include_paths() {
  local f
  while IFS= read -r f; do
    sed -i -E \
      -e "s#[^\";]*/include/python3\.[0-9]+#${py_inc}#g" \
      -e "s#[^\";]*/numpy/(_core|core)/include#${np_inc}#g" "$f"
  done < <(grep -lE "include/python3\.[0-9]+|numpy/(_core|core)/include" "$VENV"/share/*/cmake/*.cmake 2>/dev/null || true)
}

build_package() {
  local src=$1 name
  name=$(basename "$src")
  if compgen -G "/opt/ros/*/share/$name/package.xml" >/dev/null; then
    echo "build_ros_interfaces: $name comes from $(dirname /opt/ros/*/share/"$name") (source its setup.bash)"
    return
  fi
  local stamp=$VENV/share/$name/.deft-stamp want
  want=$(cd "$src" && find . -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -d' ' -f1)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]] && "$PY" -c "import $name.msg" 2>/dev/null; then
    return
  fi
  echo "build_ros_interfaces: building $name into $VENV"
  fix_exported_include_paths
  local build
  build=$(mktemp -d)
  trap 'rm -rf "$build"' RETURN
  # The rosidl generators are Python programs: run them with the venv's interpreter.
  PATH=$VENV/bin:$PATH AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV \
    cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_BUILD_TYPE=Release \
      -DPython3_EXECUTABLE="$PY" -DPYTHON_EXECUTABLE="$PY" -DBUILD_TESTING=OFF \
      -DPython3_FIND_VIRTUALENV=ONLY >"$build/configure.log" 2>&1 \
    || { tail -40 "$build/configure.log" >&2; exit 1; }
  PATH=$VENV/bin:$PATH cmake --build "$build" -j "$(nproc)" >"$build/build.log" 2>&1 \
    || { tail -40 "$build/build.log" >&2; exit 1; }
  cmake --install "$build" >/dev/null
  "$PY" -c "import $name.msg" || { echo "build_ros_interfaces: $name built but does not import" >&2; exit 1; }
  echo "$want" >"$stamp"
}

for pkg in robot/ros2/interfaces/*/; do
  [[ -f $pkg/package.xml ]] && build_package "${pkg%/}"
done
