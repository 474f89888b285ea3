#!/bin/sh
# Waits on a grandchild; both should die from one signal to the group.
sleep 30 &
echo "grandchild $!"
wait
