/* running.h — find the running provbus-consumer of a configuration file
 * without reading the file (for the control verbs while it is broken). */
#ifndef PB_RUNNING_H
#define PB_RUNNING_H

#include <stddef.h>

/* The state_dir of a running `provbus-consumer ... run` whose configuration
 * file is config_path (the same file: device and inode; a daemon started
 * without -c/--config is taken to use default_path), read from the audit
 * log it holds open (/proc/PID/fd: STATE_DIR/audit.db). A new string, or
 * NULL when there is none this process may see (not running, or another
 * user's without the right to look). Linux /proc only. */
char *pb_running_state_dir(const char *config_path, const char *default_path);

/* The configuration file named by a daemon's argv (NUL-separated, len
 * bytes, argv[0] first): the argument of -c/--config, NULL when none.
 * Points into args. Sets *is_run when one of the arguments is "run". */
const char *pb_running_config_arg(const char *args, size_t len, int *is_run);

#endif
