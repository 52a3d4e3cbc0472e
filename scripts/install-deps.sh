#!/usr/bin/env bash
# Installs the system programs chunkflow's tests use, when they are missing (Debian/Ubuntu,
# run as root or with sudo): Graphviz's `dot` renders task graphs to SVG/PNG.
set -euo pipefail

SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo"; fi

missing=()
command -v dot >/dev/null || missing+=(graphviz)
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
