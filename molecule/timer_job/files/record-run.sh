#!/bin/sh
# Test job for unitcraft.systemd.timer_job: records one line per run in its state directory.
set -eu
echo "$(date +%s) $(id -un) ${1:-run}" >> "${STATE_DIRECTORY:?}/runs.log"
