#!/bin/sh
# Leaves a grandchild holding stdout open after this script exits.
sleep 30 &
echo "grandchild $!"
exit 4
