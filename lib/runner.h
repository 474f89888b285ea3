/* runner.h — one child process run from the daemon's poll loop, no shell.
 *
 * Used by provbus-consumer for the provision command (with the lock) and
 * the notify command (without). Nothing here blocks: the daemon polls the
 * fds pb_runner_pollfds gives and calls pb_runner_handle when they are
 * ready (or on its timer).
 *
 * - Lock: with lock_file set, pb_runner_start first takes an exclusive
 *   flock (LOCK_EX|LOCK_NB) on it (creating it 0644 and its directory if
 *   needed); if another holder has it, returns PB_RUNNER_LOCKED and the
 *   caller retries later (the run is "deferred"). The lock is held by the
 *   daemon (not inherited by the child: O_CLOEXEC) until the child exits.
 * - execve of argv[0] (an absolute path, or searched in PATH when it has
 *   no slash) with envp = the daemon's environ plus the extra NAME=VALUE
 *   entries (which override same-named ones). Never a shell.
 * - stdout and stderr are one pipe; every complete line is passed to the
 *   line callback (for the log), and the last 8 KiB are kept (the tail).
 *   A child flooding output is drained without bound on memory.
 * - The child is watched through a pidfd (pidfd_open) when the kernel has
 *   it, else the caller must call pb_runner_handle on SIGCHLD.
 * - The child runs in its own process group, so terminate reaches its
 *   children too.
 */
#ifndef PB_RUNNER_H
#define PB_RUNNER_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define PB_RUNNER_TAIL 8192

enum {
	PB_RUNNER_STARTED = 0,
	PB_RUNNER_LOCKED = 1,	/* lock_file held by someone else: retry later */
};

struct pb_runner;

/* line_cb(line, len, ctx) gets each output line (no newline); may be NULL. */
struct pb_runner *pb_runner_new(void (*line_cb)(const char *line, size_t len, void *ctx),
				void *ctx);
void pb_runner_free(struct pb_runner *r);	/* kills a running child (SIGKILL) and reaps it */

/* Starts argv (NULL-terminated) with extra_env (NULL-terminated
 * "NAME=VALUE" strings, may be NULL). lock_file may be NULL. Returns
 * PB_RUNNER_STARTED, PB_RUNNER_LOCKED, or -1 with err (the exec failing in
 * the child is not an error here: the child exits 127 and the tail says
 * why). */
int pb_runner_start(struct pb_runner *r, char *const argv[], char *const extra_env[],
		    const char *lock_file, struct pb_err *err);

int pb_runner_running(const struct pb_runner *r);
pid_t pb_runner_pid(const struct pb_runner *r);

/* Fills up to max pollfds to watch while running; returns how many. */
int pb_runner_pollfds(struct pb_runner *r, struct pollfd *fds, int max);

/* Reads output and reaps the child if it exited. Returns 1 when the run is
 * over (exit status known and output drained), else 0. Call after poll
 * (any of its fds ready) or on SIGCHLD; cheap when nothing happened. */
int pb_runner_handle(struct pb_runner *r);

/* After the run is over: exit status (0..255), or 128+N when killed by
 * signal N. */
int pb_runner_exit_status(const struct pb_runner *r);
/* After the run is over: the errno of a failed exec (E2BIG, ENOENT,
 * ENOEXEC, ...; the exit status is then 127), 0 when the exec worked. */
int pb_runner_exec_errno(const struct pb_runner *r);
/* The last (up to) 8 KiB of output, valid until the next start. */
const char *pb_runner_tail(const struct pb_runner *r, size_t *len);

/* Sends sig to the child's process group. */
void pb_runner_signal(struct pb_runner *r, int sig);

#endif
