/* runner.c — one child process run from the daemon's poll loop, no shell.
 *
 * See runner.h for the contract. Life of a run:
 *   start:  lock (optional) -> pipe + /dev/null -> vfork -> child: own process
 *           group, default signals, stdio, close every other fd, execve (PATH search)
 *           (vfork, not fork: the daemon's heap holds every provider, tens of
 *           MB at 40,000; a fork copied its page tables and made each page
 *           the daemon wrote afterwards a copy-on-write fault, about a tenth
 *           of its CPU in a drain after a run: docs/BENCHMARKS-rounds.md)
 *   handle: reap (pidfd/waitpid WNOHANG), read the pipe until EAGAIN (at most
 *           PB_RUNNER_READ_MAX per call), feed the tail and the line callback
 *   over:   the child was reaped and the pipe hit EOF or, once the child is
 *           gone, ran dry (a grandchild may keep the write end open forever);
 *           the lock is released, the fds are closed.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PB_RUNNER_LINE_MAX 4096			/* longer lines go out in pieces */
#define PB_RUNNER_READ_MAX (256 * 1024)		/* per pb_runner_handle call */
#define PB_RUNNER_AFTER_EXIT_MAX (1024 * 1024)	/* drained once the child is gone */

struct pb_runner {
	void (*line_cb)(const char *line, size_t len, void *ctx);
	void *ctx;

	pid_t pid;		/* > 0 from start until the run is over */
	int pidfd;		/* -1 when the kernel has no pidfd_open */
	int outfd;		/* read end of the stdout+stderr pipe; -1 at EOF */
	int lockfd;		/* the flock on lock_file, held until the run is over */
	int errfd;		/* read end of the exec-error pipe (CLOEXEC in the child) */
	int exec_errno;		/* why the exec failed; 0 when it did not */
	int running;
	int reaped;
	int status;		/* exit status as pb_runner_exit_status gives it */
	size_t after_exit;	/* bytes read since the child was reaped */
	size_t tail_len;
	size_t line_len;

	/* last: pb_runner_new leaves them uncleared, so that their 12 KiB
	 * become resident only as a run's output comes */
	char tail[PB_RUNNER_TAIL + 1];	/* always contiguous, NUL-terminated */
	char line[PB_RUNNER_LINE_MAX];
};

struct pb_runner *pb_runner_new(void (*line_cb)(const char *line, size_t len, void *ctx),
				void *ctx)
{
	struct pb_runner *r = malloc(sizeof(*r));

	if (!r)
		return NULL;
	memset(r, 0, offsetof(struct pb_runner, tail));
	r->tail[0] = '\0';
	r->line_cb = line_cb;
	r->ctx = ctx;
	r->pidfd = r->outfd = r->lockfd = r->errfd = -1;
	return r;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void flush_line(struct pb_runner *r)
{
	if (r->line_len && r->line_cb)
		r->line_cb(r->line, r->line_len, r->ctx);
	r->line_len = 0;
}

/* Keeps the last PB_RUNNER_TAIL bytes contiguous: at most one memmove of
 * the tail per chunk read, so the cost is bounded whatever the child
 * writes. */
static void tail_add(struct pb_runner *r, const char *buf, size_t n)
{
	if (n >= PB_RUNNER_TAIL) {
		memcpy(r->tail, buf + n - PB_RUNNER_TAIL, PB_RUNNER_TAIL);
		r->tail_len = PB_RUNNER_TAIL;
	} else {
		if (r->tail_len + n > PB_RUNNER_TAIL) {
			size_t drop = r->tail_len + n - PB_RUNNER_TAIL;

			memmove(r->tail, r->tail + drop, r->tail_len - drop);
			r->tail_len -= drop;
		}
		memcpy(r->tail + r->tail_len, buf, n);
		r->tail_len += n;
	}
	r->tail[r->tail_len] = '\0';
}

static void lines_add(struct pb_runner *r, const char *buf, size_t n)
{
	while (n) {
		const char *nl = memchr(buf, '\n', n);
		size_t seg = nl ? (size_t)(nl - buf) : n;
		size_t room = sizeof(r->line) - r->line_len;

		if (seg >= room) {	/* a long line: pass the piece that fits */
			memcpy(r->line + r->line_len, buf, room);
			r->line_len += room;
			flush_line(r);
			buf += room;
			n -= room;
			continue;
		}
		memcpy(r->line + r->line_len, buf, seg);
		r->line_len += seg;
		buf += seg;
		n -= seg;
		if (nl) {
			/* an empty line is a line too */
			if (r->line_cb)
				r->line_cb(r->line, r->line_len, r->ctx);
			r->line_len = 0;
			buf++;
			n--;
		}
	}
}

/* Reads until EAGAIN, EOF or the budget (bytes, shared by the calls of
 * one pb_runner_handle) is spent. Returns 1 when the pipe has nothing more
 * right now (EAGAIN or EOF), 0 when the budget ran out. */
static int read_output(struct pb_runner *r, size_t *budget)
{
	char buf[65536];

	while (r->outfd >= 0) {
		if (*budget == 0)
			return 0;
		if (r->reaped && r->after_exit >= PB_RUNNER_AFTER_EXIT_MAX) {
			/* a grandchild flooding the pipe: enough */
			close_fd(&r->outfd);
			break;
		}
		ssize_t n = read(r->outfd, buf, *budget < sizeof(buf) ? *budget : sizeof(buf));

		if (n > 0) {
			tail_add(r, buf, (size_t)n);
			lines_add(r, buf, (size_t)n);
			*budget -= (size_t)n;
			if (r->reaped)
				r->after_exit += (size_t)n;
		} else if (n == 0) {
			close_fd(&r->outfd);
		} else if (errno == EINTR) {
			continue;
		} else {
			/* EAGAIN, or an error the pipe cannot recover from */
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				close_fd(&r->outfd);
			break;
		}
	}
	return 1;
}

static void set_status(struct pb_runner *r, int wstatus)
{
	if (WIFEXITED(wstatus))
		r->status = WEXITSTATUS(wstatus);
	else if (WIFSIGNALED(wstatus))
		r->status = 128 + WTERMSIG(wstatus);
	else
		r->status = 255;
}

static void reap(struct pb_runner *r, int block)
{
	int wstatus;
	pid_t p;

	if (r->reaped || r->pid <= 0)
		return;
	do
		p = waitpid(r->pid, &wstatus, block ? 0 : WNOHANG);
	while (p < 0 && errno == EINTR);
	if (p == r->pid) {
		set_status(r, wstatus);
		r->reaped = 1;
		close_fd(&r->pidfd);
	} else if (p < 0 && errno == ECHILD) {
		/* reaped behind our back (SIGCHLD set to SIG_IGN?): status unknown */
		r->status = 255;
		r->reaped = 1;
		close_fd(&r->pidfd);
	}
}

/* The child is gone: the exec-error pipe says whether its exec failed
 * (its write end closed at the exec, or written then closed at _exit). */
static void read_exec_errno(struct pb_runner *r)
{
	int e = 0;

	if (r->errfd < 0)
		return;
	if (read(r->errfd, &e, sizeof(e)) == (ssize_t)sizeof(e))
		r->exec_errno = e;
	close_fd(&r->errfd);
}

static void finish(struct pb_runner *r)
{
	read_exec_errno(r);
	flush_line(r);
	close_fd(&r->outfd);
	close_fd(&r->pidfd);
	close_fd(&r->lockfd);
	r->running = 0;
}

int pb_runner_handle(struct pb_runner *r)
{
	size_t budget = PB_RUNNER_READ_MAX;
	int dry;

	if (!r->running)
		return 0;
	reap(r, 0);
	if (r->reaped) {
		dry = read_output(r, &budget);
	} else {
		dry = read_output(r, &budget);
		reap(r, 0);
		if (r->reaped)	/* exited while we read: pick up its last words */
			dry = read_output(r, &budget);
	}
	if (r->reaped && (r->outfd < 0 || dry)) {
		/* the child is gone and all it wrote is read: whatever still
		 * holds the pipe open (a grandchild) is not waited for */
		finish(r);
		return 1;
	}
	return 0;
}

/* mkdir -p of the directory holding file (mode 0755). */
static int mkdir_parents(const char *file, struct pb_err *err)
{
	char *dir = strdup(file), *p;
	int rc = -1;

	if (!dir) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	p = strrchr(dir, '/');
	if (!p || p == dir) {
		rc = 0;
		goto out;
	}
	*p = '\0';
	for (p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			pb_err_set(err, EX_CANTCREAT, "lock directory %s: %s", dir, strerror(errno));
			goto out;
		}
		*p = c;
		if (!c)
			break;
	}
	rc = 0;
out:
	free(dir);
	return rc;
}

/* Returns PB_RUNNER_STARTED with r->lockfd holding the lock,
 * PB_RUNNER_LOCKED, or -1. */
static int take_lock(struct pb_runner *r, const char *lock_file, struct pb_err *err)
{
	int fd;

	if (mkdir_parents(lock_file, err) < 0)
		return -1;
	fd = open(lock_file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EISDIR))
		fd = open(lock_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return pb_err_set(err, EX_CANTCREAT, "lock_file %s: %s", lock_file, strerror(errno));
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			close(fd);
			return PB_RUNNER_LOCKED;
		}
		pb_err_set(err, EX_OSERR, "lock_file %s: flock: %s", lock_file, strerror(errno));
		close(fd);
		return -1;
	}
	r->lockfd = fd;
	return PB_RUNNER_STARTED;
}

static size_t env_name_len(const char *s)
{
	const char *eq = strchr(s, '=');

	return eq ? (size_t)(eq - s) : strlen(s);
}

static int env_overridden(const char *entry, char *const extra[], size_t from)
{
	size_t n = env_name_len(entry);

	for (size_t i = from; extra && extra[i]; i++)
		if (env_name_len(extra[i]) == n && !strncmp(extra[i], entry, n))
			return 1;
	return 0;
}

/* environ + extra (extra wins on a same name; among extras, the last).
 * The strings are borrowed; only the array is allocated. */
static char **build_env(char *const extra[], struct pb_err *err)
{
	size_t ne = 0, nx = 0, k = 0;
	char **envp = NULL;

	for (size_t i = 0; environ && environ[i]; i++)
		ne++;
	for (size_t i = 0; extra && extra[i]; i++, nx++)
		if (!strchr(extra[i], '=') || extra[i][0] == '=') {
			pb_err_set(err, EX_SOFTWARE, "environment entry '%s' is not NAME=VALUE",
				   extra[i]);
			return NULL;
		}
	envp = calloc(ne + nx + 1, sizeof(*envp));
	if (!envp) {
		pb_err_set(err, EX_OSERR, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < ne; i++)
		if (!env_overridden(environ[i], extra, 0))
			envp[k++] = environ[i];
	for (size_t i = 0; i < nx; i++)
		if (!env_overridden(extra[i], extra, i + 1))
			envp[k++] = extra[i];
	envp[k] = NULL;
	return envp;
}

/* Closes every fd from 3 up, but keep (>= 3). */
static void close_other_fds(int keep)
{
#ifdef SYS_close_range
	if ((keep == 3 || syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U) == 0) &&
	    syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) == 0)
		return;
#endif
	long max = sysconf(_SC_OPEN_MAX);

	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = 3; fd < max; fd++)
		if (fd != keep)
			close(fd);
}

/* Makes src the descriptor target (without close-on-exec). */
static int move_fd(int src, int target)
{
	if (src == target)
		return fcntl(src, F_SETFD, 0);
	return dup2(src, target) < 0 ? -1 : 0;
}

static void child_fail(const char *what, const char *prog, int errfd)
{
	char msg[512];
	int e = errno;
	int n = snprintf(msg, sizeof(msg), "provbus: cannot %s '%s': %s\n", what, prog,
			 strerror(e));

	/* the errno to the parent (pb_runner_exec_errno), the text to the output */
	if (write(errfd, &e, sizeof(e)) < 0 ||
	    (n > 0 && write(STDOUT_FILENO, msg, (size_t)n) < 0)) {
		/* nowhere left to say it */
	}
	_exit(127);
}

/* execve of argv[0], searched in the child's PATH when it has no slash.
 * Not execvpe: glibc's falls back to /bin/sh for a file without a #! line,
 * and nothing here ever goes through a shell. Returns with errno set. */
static void exec_search(char *const argv[], char **envp)
{
	const char *path = NULL, *p, *end;
	char buf[4096];
	size_t plen, flen = strlen(argv[0]);
	int saved = ENOENT;

	if (strchr(argv[0], '/')) {
		execve(argv[0], argv, envp);
		return;
	}
	for (size_t i = 0; envp[i]; i++)
		if (!strncmp(envp[i], "PATH=", 5))
			path = envp[i] + 5;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; ; p = end + 1) {
		end = strchrnul(p, ':');
		plen = (size_t)(end - p);
		if (plen == 0) {	/* an empty entry is the current directory */
			p = ".";
			plen = 1;
		}
		if (plen + 1 + flen < sizeof(buf)) {
			memcpy(buf, p, plen);
			buf[plen] = '/';
			memcpy(buf + plen + 1, argv[0], flen + 1);
			execve(buf, argv, envp);
			if (errno == EACCES)
				saved = EACCES;	/* keep looking, but report it */
			else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP &&
				 errno != ENAMETOOLONG)
				return;	/* found but cannot run (ENOEXEC, E2BIG, ...) */
		}
		if (!*end)
			break;
	}
	errno = saved;
}

/* In the vforked child, which shares the daemon's memory until its execve
 * (the daemon waits meanwhile): never returns, never writes to anything
 * but its own frame, its fds and its signal state (not shared: no
 * CLONE_SIGHAND), and errno. Only what is safe after fork in a
 * single-threaded process. */
static void child_exec(char *const argv[], char **envp, int devnull, int wr, int errfd)
{
	sigset_t none;

	setpgid(0, 0);
	/* the daemon blocks signals for its signalfd and ignores SIGPIPE: a
	 * blocked mask and SIG_IGN both survive execve, so undo them */
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* keep the sources clear of 0..2 before the dup2s */
	if (devnull < 3)
		devnull = fcntl(devnull, F_DUPFD, 3);
	if (wr < 3)
		wr = fcntl(wr, F_DUPFD, 3);
	if (errfd < 3)
		errfd = fcntl(errfd, F_DUPFD_CLOEXEC, 3);
	if (devnull < 0 || wr < 0 || errfd < 0 || move_fd(devnull, 0) < 0 || move_fd(wr, 1) < 0 ||
	    move_fd(wr, 2) < 0)
		_exit(127);
	close_other_fds(errfd);
	exec_search(argv, envp);
	child_fail("execute", argv[0], errfd);
}

/* vfork in a frame of its own: the caller's variables are not the
 * child's to clobber, and the child never returns from here (child_exec
 * ends in execve or _exit). */
static pid_t __attribute__((noinline)) spawn(char *const argv[], char **envp, int devnull, int wr,
					     int errfd)
{
	pid_t pid = vfork();

	if (pid == 0)
		child_exec(argv, envp, devnull, wr, errfd);
	return pid;
}

static void reset_run(struct pb_runner *r)
{
	r->pid = 0;
	r->reaped = 0;
	r->status = 0;
	r->exec_errno = 0;
	r->after_exit = 0;
	r->tail_len = 0;
	r->tail[0] = '\0';
	r->line_len = 0;
}

int pb_runner_start(struct pb_runner *r, char *const argv[], char *const extra_env[],
		    const char *lock_file, struct pb_err *err)
{
	int pfd[2] = { -1, -1 }, efd[2] = { -1, -1 }, devnull = -1, rc = -1;
	char **envp = NULL;
	pid_t pid;

	if (r->running) {
		pb_err_set(err, EX_SOFTWARE, "a run is already going (pid %ld)", (long)r->pid);
		goto out;
	}
	if (!argv || !argv[0] || !argv[0][0]) {
		pb_err_set(err, EX_SOFTWARE, "no command to run");
		goto out;
	}
	reset_run(r);
	envp = build_env(extra_env, err);
	if (!envp)
		goto out;
	if (lock_file) {
		rc = take_lock(r, lock_file, err);
		if (rc != PB_RUNNER_STARTED)
			goto out;
		rc = -1;
	}
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0) {
		pb_err_set(err, EX_OSERR, "/dev/null: %s", strerror(errno));
		goto out;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0 || fcntl(pfd[0], F_SETFL, O_NONBLOCK) < 0 ||
	    pipe2(efd, O_CLOEXEC) < 0) {
		pb_err_set(err, EX_OSERR, "pipe for %s: %s", argv[0], strerror(errno));
		goto out;
	}
	pid = spawn(argv, envp, devnull, pfd[1], efd[1]);
	if (pid < 0) {
		pb_err_set(err, EX_OSERR, "vfork for %s: %s", argv[0], strerror(errno));
		goto out;
	}

	/* both sides set the group, so kill(-pid) works whoever runs first
	 * (EACCES once the child has exec'd: it did it itself by then) */
	setpgid(pid, pid);
	r->pid = pid;
	r->running = 1;
	r->outfd = pfd[0];
	pfd[0] = -1;
	r->errfd = efd[0];
	efd[0] = -1;
#ifdef SYS_pidfd_open
	r->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);	/* O_CLOEXEC by the kernel */
	if (r->pidfd < 0)
		r->pidfd = -1;
#endif
	rc = PB_RUNNER_STARTED;
out:
	if (rc < 0)
		close_fd(&r->lockfd);
	close_fd(&pfd[0]);
	close_fd(&pfd[1]);
	close_fd(&efd[0]);
	close_fd(&efd[1]);
	close_fd(&devnull);
	free(envp);
	return rc;
}

int pb_runner_running(const struct pb_runner *r)
{
	return r->running;
}

pid_t pb_runner_pid(const struct pb_runner *r)
{
	return r->pid;
}

int pb_runner_pollfds(struct pb_runner *r, struct pollfd *fds, int max)
{
	int n = 0;

	if (!r->running)
		return 0;
	if (r->outfd >= 0 && n < max)
		fds[n++] = (struct pollfd){ .fd = r->outfd, .events = POLLIN };
	if (r->pidfd >= 0 && !r->reaped && n < max)
		fds[n++] = (struct pollfd){ .fd = r->pidfd, .events = POLLIN };
	return n;
}

int pb_runner_exit_status(const struct pb_runner *r)
{
	return r->status;
}

int pb_runner_exec_errno(const struct pb_runner *r)
{
	return r->exec_errno;
}

const char *pb_runner_tail(const struct pb_runner *r, size_t *len)
{
	if (len)
		*len = r->tail_len;
	return r->tail;
}

void pb_runner_signal(struct pb_runner *r, int sig)
{
	/* after the child is reaped its pid may be reused, unless the group
	 * still has members (which keeps the id taken): only signal a group
	 * whose leader we have not reaped yet, or which still holds the pipe */
	if (r->running && r->pid > 0 && (!r->reaped || r->outfd >= 0))
		kill(-r->pid, sig);
}

void pb_runner_free(struct pb_runner *r)
{
	if (!r)
		return;
	if (r->running) {
		if (!r->reaped)
			kill(-r->pid, SIGKILL);
		reap(r, 1);
		finish(r);
	}
	free(r);
}
