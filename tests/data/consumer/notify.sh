#!/bin/sh
# notify.sh OUT [EXIT] — a stand-in consumer.notify command: appends one
# line per call to OUT with the PROVBUS_* variables it got, and exits with
# EXIT (a number, or a file holding one; a missing file means 0).
out=$1 st=${2:-0}
case $st in /*) if [ -f "$st" ]; then st=$(cat "$st"); else st=0; fi ;; esac
echo "run=${PROVBUS_RUN_ID-unset} reason=${PROVBUS_REASON-unset} exit=${PROVBUS_EXIT_STATUS-unset} changed=${PROVBUS_CHANGED_KEYS-unset} node=${PROVBUS_NODE-unset}" >>"$out"
exit "$st"
