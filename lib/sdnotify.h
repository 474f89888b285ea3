/* sdnotify.h — systemd's notify protocol without libsystemd: one datagram
 * to $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace).
 * Without NOTIFY_SOCKET every call is a no-op returning 0. */
#ifndef PB_SDNOTIFY_H
#define PB_SDNOTIFY_H

#include <stdint.h>

/* Sends state ("READY=1", "WATCHDOG=1", "STATUS=...", "STOPPING=1";
 * several separated by '\n'). Returns 0, or -1 (errno) when sending failed. */
int pb_sd_notify(const char *state);
int pb_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval from $WATCHDOG_USEC (and $WATCHDOG_PID, if set,
 * must be ours), in ms; 0 when not asked for. Send WATCHDOG=1 at half
 * this interval. */
int64_t pb_sd_watchdog_ms(void);

/* Keeps NOTIFY_SOCKET and the watchdog interval for this process and
 * removes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the
 * environment, so children (provision runs, notify) do not see them. */
void pb_sd_detach(void);

#endif
