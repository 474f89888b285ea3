#!/bin/sh
# provision.sh LOG [SLEEP] [EXIT] [HOLD] — a stand-in provision command for the
# consumer tests. Appends to LOG:
#   start RUN_ID REASON EPOCH_MS PID
#   end RUN_ID EPOCH_MS STATUS
# and writes its whole environment to LOG.RUN_ID.env (NUL-separated, so
# values can be compared byte for byte). Then sleeps SLEEP seconds and
# exits with EXIT. SLEEP and EXIT are numbers or files holding one, re-read
# at every run (a test can make runs slow or failing, then not); a missing
# file means 0. While the file HOLD exists (at most 60 s) the run does not
# end: a test holds a run open as long as it needs, whatever the load.
log=$1 sleep_s=${2:-0} st=${3:-0} hold=${4:-}
now() { date +%s%3N; }
val() { case $1 in /*) if [ -f "$1" ]; then cat "$1"; else echo 0; fi ;; *) echo "$1" ;; esac; }
echo "start ${PROVBUS_RUN_ID:-?} ${PROVBUS_REASON:-?} $(now) $$" >>"$log"
env -0 >"$log.${PROVBUS_RUN_ID:-x}.env"
echo "provision.sh output line for run ${PROVBUS_RUN_ID:-?}"
s=$(val "$sleep_s")
[ "$s" = 0 ] || sleep "$s"
n=0
while [ -n "$hold" ] && [ -e "$hold" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n + 1)); done
st=$(val "$st")
echo "end ${PROVBUS_RUN_ID:-?} $(now) $st" >>"$log"
exit "$st"
