/* test_runner.c — the child runner: exit statuses, output tail and lines,
 * environment, no shell, the lock, grandchildren, process-group signals. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pbtime.h"
#include "runner.h"
#include "suite_main.h"

/* What the line callback saw. */
struct lines {
	size_t count;
	size_t bytes;
	size_t longest;
	char text[8192];	/* the first lines, each followed by '\n' */
	size_t text_len;
	char last[4097];
};

static void on_line(const char *line, size_t len, void *ctx)
{
	struct lines *l = ctx;

	l->count++;
	l->bytes += len;
	if (len > l->longest)
		l->longest = len;
	if (l->text_len + len + 1 < sizeof(l->text)) {
		memcpy(l->text + l->text_len, line, len);
		l->text_len += len;
		l->text[l->text_len++] = '\n';
		l->text[l->text_len] = '\0';
	}
	if (len < sizeof(l->last)) {
		memcpy(l->last, line, len);
		l->last[len] = '\0';
	}
}

/* Polls the runner's fds and handles them until the run is over or
 * timeout_ms passed. Returns 1 when over. */
static int drive(struct pb_runner *r, int timeout_ms)
{
	int64_t deadline = pb_mono_ms() + timeout_ms;

	while (pb_mono_ms() < deadline) {
		struct pollfd fds[4];
		int n = pb_runner_pollfds(r, fds, 4);

		ck_assert_int_ge(poll(fds, (nfds_t)n, 50), 0);
		if (pb_runner_handle(r))
			return 1;
	}
	return 0;
}

/* Starts argv (holding lock when not NULL), runs it to the end (10 s at
 * most), returns the exit status. */
static int run_locked(struct pb_runner *r, char *const argv[], char *const env[],
		      const char *lock)
{
	struct pb_err err = PB_ERR_INIT;
	int rc = pb_runner_start(r, argv, env, lock, &err);

	ck_assert_msg(rc == PB_RUNNER_STARTED, "start %s: %s", argv[0], err.msg);
	ck_assert(pb_runner_running(r));
	ck_assert_int_gt(pb_runner_pid(r), 0);
	ck_assert_msg(drive(r, 10000), "%s did not finish", argv[0]);
	ck_assert(!pb_runner_running(r));
	return pb_runner_exit_status(r);
}

static int run(struct pb_runner *r, char *const argv[], char *const env[])
{
	return run_locked(r, argv, env, NULL);
}

static const char *data(const char *name)
{
	static char buf[4096];
	const char *root = getenv("PB_ROOT");

	snprintf(buf, sizeof(buf), "%s/tests/data/runner/%s", root ? root : ".", name);
	return buf;
}

static char tmpdir[64];

static void setup_tmp(void)
{
	strcpy(tmpdir, "/tmp/pb-runner-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(exit_statuses)
{
	static const struct {
		const char *argv[5];
		int status;
	} cases[] = {
		{ { "true" }, 0 },
		{ { "/bin/false" }, 1 },
		{ { "sh", "-c", "exit 3" }, 3 },
		{ { "sh", "-c", "exit 255" }, 255 },
		{ { "sh", "-c", "kill -9 $$" }, 128 + 9 },
		{ { "sh", "-c", "kill -TERM $$" }, 128 + 15 },
	};
	struct pb_runner *r = pb_runner_new(NULL, NULL);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(run(r, (char *const *)cases[i].argv, NULL), cases[i].status);
		ck_assert_int_eq(pb_runner_exec_errno(r), 0);	/* the exec worked */
	}
	pb_runner_free(r);
}
END_TEST

START_TEST(lines_reach_callback)
{
	struct lines l = { 0 };
	struct pb_runner *r = pb_runner_new(on_line, &l);
	char *argv[] = { "printf", "one\ntwo\n\nfour\r\nlast-without-newline", NULL };
	size_t len;

	ck_assert_int_eq(run(r, argv, NULL), 0);
	ck_assert_uint_eq(l.count, 5);
	ck_assert_str_eq(l.text, "one\ntwo\n\nfour\r\nlast-without-newline\n");
	ck_assert_str_eq(pb_runner_tail(r, &len), "one\ntwo\n\nfour\r\nlast-without-newline");
	ck_assert_uint_eq(len, strlen("one\ntwo\n\nfour\r\nlast-without-newline"));
	pb_runner_free(r);
}
END_TEST

/* What a child reads and writes: all its output, as the lines reach the
 * callback. */
static const struct {
	const char *argv[4];
	const char *text;
} io_cases[] = {
	/* stderr joins stdout, in order */
	{ { "sh", "-c", "echo out; echo err >&2; echo out2" }, "out\nerr\nout2\n" },
	/* stdin is /dev/null: cat reads nothing */
	{ { "sh", "-c", "cat; readlink /proc/self/fd/0" }, "/dev/null\n" },
};

START_TEST(child_io)
{
	struct lines l = { 0 };
	struct pb_runner *r = pb_runner_new(on_line, &l);

	ck_assert_int_eq(run(r, (char *const *)io_cases[_i].argv, NULL), 0);
	ck_assert_str_eq(l.text, io_cases[_i].text);
	pb_runner_free(r);
}
END_TEST

/* seq 1 200000 is 1.3 MB: the tail is its last 8 KiB exactly, every line
 * reaches the callback, and memory does not grow with the output. */
START_TEST(tail_of_a_megabyte)
{
	struct lines l = { 0 };
	struct pb_runner *r = pb_runner_new(on_line, &l);
	char *argv[] = { "seq", "1", "200000", NULL };
	char *expect = malloc(2 * 1024 * 1024);
	size_t len, elen = 0;
	const char *tail;

	for (int i = 1; i <= 200000; i++)
		elen += (size_t)sprintf(expect + elen, "%d\n", i);
	ck_assert_uint_gt(elen, 1000000);
	ck_assert_int_eq(run(r, argv, NULL), 0);
	tail = pb_runner_tail(r, &len);
	ck_assert_uint_eq(len, PB_RUNNER_TAIL);
	ck_assert_int_eq(memcmp(tail, expect + elen - PB_RUNNER_TAIL, PB_RUNNER_TAIL), 0);
	ck_assert_uint_eq(strlen(tail), PB_RUNNER_TAIL);
	ck_assert_uint_eq(l.count, 200000);
	ck_assert_str_eq(l.last, "200000");
	free(expect);
	pb_runner_free(r);
}
END_TEST

/* 64 MB without a newline: passed in pieces of at most 4 KiB, all of it,
 * and the process does not grow by anything near that. */
START_TEST(flood_stays_bounded)
{
	struct lines l = { 0 };
	struct pb_runner *r = pb_runner_new(on_line, &l);
	char *argv[] = { "head", "-c", "67108864", "/dev/zero", NULL };
	struct rusage before, after;
	size_t len;
	const char *tail;

	struct pb_err err = PB_ERR_INIT;
	size_t most = 0;

	getrusage(RUSAGE_SELF, &before);
	ck_assert_int_eq(pb_runner_start(r, argv, NULL, NULL, &err), PB_RUNNER_STARTED);
	for (int over = 0; !over;) {
		struct pollfd fds[2];
		int n = pb_runner_pollfds(r, fds, 2);
		size_t had = l.bytes;

		ck_assert_int_ge(poll(fds, (nfds_t)n, 1000), 1);
		over = pb_runner_handle(r);
		if (l.bytes - had > most)
			most = l.bytes - had;
	}
	getrusage(RUSAGE_SELF, &after);
	ck_assert_int_eq(pb_runner_exit_status(r), 0);
	/* one call reads at most 256 KiB, so the daemon's loop stays lively */
	ck_assert_uint_le(most, 256 * 1024 + 4096);
	ck_assert_uint_eq(l.bytes, 67108864);
	ck_assert_uint_le(l.longest, 4096);
	ck_assert_uint_ge(l.count, 67108864 / 4096);
	tail = pb_runner_tail(r, &len);
	ck_assert_uint_eq(len, PB_RUNNER_TAIL);
	ck_assert_int_eq(tail[0], 0);
	/* ru_maxrss is in KiB */
	ck_assert_int_lt(after.ru_maxrss - before.ru_maxrss, 8 * 1024);
	pb_runner_free(r);
}
END_TEST

START_TEST(extra_env_overrides)
{
	struct lines l = { 0 };
	struct pb_runner *r = pb_runner_new(on_line, &l);
	char *argv[] = { "/usr/bin/env", NULL };
	char *env[] = { "PB_RUNNER_EXTRA=x y'z", "PB_RUNNER_OVER=new", "PB_RUNNER_TWICE=first",
			"PB_RUNNER_TWICE=second", NULL };

	setenv("PB_RUNNER_KEEP", "kept", 1);
	setenv("PB_RUNNER_OVER", "old", 1);
	ck_assert_int_eq(run(r, argv, env), 0);
	ck_assert_ptr_nonnull(strstr(l.text, "\nPB_RUNNER_KEEP=kept\n"));
	ck_assert_ptr_nonnull(strstr(l.text, "\nPB_RUNNER_EXTRA=x y'z\n"));
	ck_assert_ptr_nonnull(strstr(l.text, "\nPB_RUNNER_OVER=new\n"));
	ck_assert_ptr_null(strstr(l.text, "PB_RUNNER_OVER=old"));
	ck_assert_ptr_nonnull(strstr(l.text, "\nPB_RUNNER_TWICE=second\n"));
	ck_assert_ptr_null(strstr(l.text, "PB_RUNNER_TWICE=first"));
	unsetenv("PB_RUNNER_KEEP");
	unsetenv("PB_RUNNER_OVER");
	pb_runner_free(r);
}
END_TEST

START_TEST(bad_extra_env)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_runner *r = pb_runner_new(NULL, NULL);
	char *argv[] = { "true", NULL };
	char *env[] = { "NO_EQUALS", NULL };

	ck_assert_int_eq(pb_runner_start(r, argv, env, NULL, &err), -1);
	ck_assert_int_eq(err.code, EX_SOFTWARE);
	ck_assert_ptr_nonnull(strstr(err.msg, "NO_EQUALS"));
	ck_assert(!pb_runner_running(r));
	pb_runner_free(r);
}
END_TEST

START_TEST(no_shell)
{
	static const char *nasty = "$(touch /tmp/pb-runner-pwned) `id` ; rm -rf x | && > * ' \" \\";
	struct lines l = { 0 };
	struct pb_runner *r = pb_runner_new(on_line, &l);
	char *argv[] = { "printf", "[%s]\n", (char *)nasty, "*", NULL };
	char expect[256];

	unlink("/tmp/pb-runner-pwned");
	ck_assert_int_eq(run(r, argv, NULL), 0);
	snprintf(expect, sizeof(expect), "[%s]\n[*]\n", nasty);
	ck_assert_str_eq(l.text, expect);
	ck_assert_int_eq(access("/tmp/pb-runner-pwned", F_OK), -1);
	pb_runner_free(r);
}
END_TEST

/* glibc's execvpe would hand a file without "#!" to /bin/sh; we do not. */
START_TEST(no_shell_fallback)
{
	struct pb_runner *r = pb_runner_new(NULL, NULL);
	char *argv[] = { (char *)data("noshebang"), NULL };
	const char *tail;

	ck_assert_int_eq(run(r, argv, NULL), 127);
	ck_assert_int_eq(pb_runner_exec_errno(r), ENOEXEC);
	tail = pb_runner_tail(r, NULL);
	ck_assert_msg(strstr(tail, "Exec format error"), "tail: %s", tail);
	ck_assert_ptr_null(strstr(tail, "run by a shell"));
	pb_runner_free(r);
}
END_TEST

/* An environment variable over the kernel's 128 KiB: E2BIG, reported. */
START_TEST(exec_e2big)
{
	struct pb_runner *r = pb_runner_new(NULL, NULL);
	char *argv[] = { "true", NULL };
	size_t n = 140 * 1024;
	char *big = malloc(n + 8);
	char *env[] = { big, NULL };

	ck_assert_ptr_nonnull(big);
	/* valgrind cannot survive a failed execve it did not foresee (it
	 * dies with "EXEC FAILED"): this one is for the plain run */
	if (getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "vgpreload")) {
		free(big);
		pb_runner_free(r);
		return;
	}
	memcpy(big, "BIG=", 4);
	memset(big + 4, 'x', n);
	big[n + 4] = '\0';
	ck_assert_int_eq(run(r, argv, env), 127);
	ck_assert_int_eq(pb_runner_exec_errno(r), E2BIG);
	ck_assert_ptr_nonnull(strstr(pb_runner_tail(r, NULL), "Argument list too long"));
	free(big);
	pb_runner_free(r);
}
END_TEST

START_TEST(missing_program)
{
	struct pb_runner *r = pb_runner_new(NULL, NULL);
	char *argv1[] = { "pb-no-such-program", "arg", NULL };
	char *argv2[] = { "/nonexistent/dir/prog", NULL };
	const char *tail;

	ck_assert_int_eq(run(r, argv1, NULL), 127);
	tail = pb_runner_tail(r, NULL);
	ck_assert_msg(strstr(tail, "'pb-no-such-program'") && strstr(tail, "No such file"),
		      "tail: %s", tail);
	ck_assert_int_eq(pb_runner_exec_errno(r), ENOENT);
	ck_assert_int_eq(run(r, argv2, NULL), 127);
	tail = pb_runner_tail(r, NULL);
	ck_assert_msg(strstr(tail, "'/nonexistent/dir/prog'"), "tail: %s", tail);
	ck_assert_int_eq(pb_runner_exec_errno(r), ENOENT);
	pb_runner_free(r);
}
END_TEST

/* PATH is searched in the child's environment (extra may set it). */
START_TEST(path_search)
{
	struct lines l = { 0 };
	struct pb_runner *r = pb_runner_new(on_line, &l);
	char path[4200];
	char *argv[] = { "noshebang", NULL };
	char *argv2[] = { "grandchild.sh", NULL };
	char *env[] = { path, NULL };

	snprintf(path, sizeof(path), "PATH=/nonexistent:%s", data(""));
	/* found, not runnable: 127 with ENOEXEC, not a later PATH entry */
	ck_assert_int_eq(run(r, argv, env), 127);
	ck_assert_ptr_nonnull(strstr(pb_runner_tail(r, NULL), "Exec format error"));
	ck_assert_int_eq(run(r, argv2, env), 4);
	ck_assert_ptr_nonnull(strstr(l.text, "grandchild "));
	/* the grandchild's group is left over: kill it */
	kill(-pb_runner_pid(r), SIGKILL);
	pb_runner_free(r);
}
END_TEST

/* Nothing but 0, 1, 2 reaches the child: not a descriptor left open
 * without O_CLOEXEC, not the lock. */
START_TEST(inherits_no_fds)
{
	struct lines l = { 0 };
	struct pb_runner *r = pb_runner_new(on_line, &l);
	char *argv[] = { "ls", "/proc/self/fd", NULL };
	char lock[128];
	int leak = open("/dev/null", O_RDONLY);	/* no O_CLOEXEC on purpose */

	ck_assert_int_ge(leak, 0);
	snprintf(lock, sizeof(lock), "%s/lock", tmpdir);
	ck_assert_int_eq(run_locked(r, argv, NULL, lock), 0);
	/* ls opens the directory as 3 */
	ck_assert_str_eq(l.text, "0\n1\n2\n3\n");
	close(leak);
	pb_runner_free(r);
}
END_TEST

static int try_lock(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC), rc;

	ck_assert_int_ge(fd, 0);
	rc = flock(fd, LOCK_EX | LOCK_NB);
	close(fd);
	return rc;
}

START_TEST(lock_defers_and_releases)
{
	struct pb_runner *r = pb_runner_new(NULL, NULL);
	struct pb_err err = PB_ERR_INIT;
	char *argv[] = { "sleep", "0.3", NULL };
	char lock[128];
	struct stat st;
	int fd;

	/* the directory does not exist yet: it is made */
	snprintf(lock, sizeof(lock), "%s/a/b/chef.lock", tmpdir);
	ck_assert_int_eq(pb_runner_start(r, argv, NULL, lock, &err), PB_RUNNER_STARTED);
	ck_assert_int_eq(stat(lock, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0644);
	/* held during the run */
	ck_assert_int_eq(try_lock(lock), -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);
	ck_assert(drive(r, 10000));
	/* released after it */
	ck_assert_int_eq(try_lock(lock), 0);

	/* another holder (a manual chef-solo): deferred, nothing started */
	fd = open(lock, O_RDWR | O_CLOEXEC);
	ck_assert_int_eq(flock(fd, LOCK_EX), 0);
	ck_assert_int_eq(pb_runner_start(r, argv, NULL, lock, &err), PB_RUNNER_LOCKED);
	ck_assert(!pb_runner_running(r));
	ck_assert_int_eq(pb_runner_pollfds(r, (struct pollfd[2]){ 0 }, 2), 0);
	ck_assert_int_eq(pb_runner_start(r, argv, NULL, lock, &err), PB_RUNNER_LOCKED);
	/* released: starts */
	close(fd);
	ck_assert_int_eq(run_locked(r, argv, NULL, lock), 0);
	ck_assert_int_eq(try_lock(lock), 0);

	/* a lock that cannot be made is an error, not a deferral */
	ck_assert_int_eq(pb_runner_start(r, argv, NULL, "/proc/pb-no/lock", &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "/proc/pb-no"));
	ck_assert(!pb_runner_running(r));
	pb_runner_free(r);
}
END_TEST

/* Also when the run fails to exec, the lock is let go. */
START_TEST(lock_released_after_failed_exec)
{
	struct pb_runner *r = pb_runner_new(NULL, NULL);
	char *argv[] = { "pb-no-such-program", NULL };
	char lock[128];

	snprintf(lock, sizeof(lock), "%s/lock", tmpdir);
	ck_assert_int_eq(run_locked(r, argv, NULL, lock), 127);
	ck_assert_int_eq(try_lock(lock), 0);
	pb_runner_free(r);
}
END_TEST

START_TEST(start_while_running)
{
	struct pb_runner *r = pb_runner_new(NULL, NULL);
	struct pb_err err = PB_ERR_INIT;
	char *argv[] = { "sleep", "30", NULL };

	ck_assert_int_eq(pb_runner_start(r, argv, NULL, NULL, &err), PB_RUNNER_STARTED);
	ck_assert_int_eq(pb_runner_start(r, argv, NULL, NULL, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "already"));
	ck_assert(pb_runner_running(r));
	pb_runner_free(r);	/* kills it */
}
END_TEST

/* The child exits but a grandchild keeps the pipe open for 30 s: the run
 * is over when the child is, with the child's status and output. */
START_TEST(grandchild_does_not_hang)
{
	struct lines l = { 0 };
	struct pb_runner *r = pb_runner_new(on_line, &l);
	char *argv[] = { (char *)data("grandchild.sh"), NULL };
	int64_t t0 = pb_mono_ms();
	pid_t pgid;

	ck_assert_int_eq(run(r, argv, NULL), 4);
	ck_assert_int_lt(pb_mono_ms() - t0, 5000);
	ck_assert_ptr_nonnull(strstr(l.text, "grandchild "));
	pgid = pb_runner_pid(r);
	ck_assert_int_eq(kill(-pgid, SIGKILL), 0);	/* the sleep was still there */
	pb_runner_free(r);
}
END_TEST

/* One signal to the group reaches the child's child too; and a signal the
 * daemon blocks (for its signalfd) is not blocked in the child. */
START_TEST(group_signal_kills_grandchild)
{
	struct lines l = { 0 };
	struct pb_runner *r = pb_runner_new(on_line, &l);
	struct pb_err err = PB_ERR_INIT;
	char *argv[] = { (char *)data("group.sh"), NULL };
	sigset_t set, old;
	pid_t gpid = 0;
	int64_t deadline;
	int st;

	/* orphans come to us, so the grandchild's fate can be read */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, &old);
	ck_assert_int_eq(pb_runner_start(r, argv, NULL, NULL, &err), PB_RUNNER_STARTED);
	deadline = pb_mono_ms() + 10000;
	while (!strstr(l.text, "grandchild ") && pb_mono_ms() < deadline) {
		struct pollfd fds[2];
		int n = pb_runner_pollfds(r, fds, 2);

		poll(fds, (nfds_t)n, 50);
		ck_assert_int_eq(pb_runner_handle(r), 0);
	}
	ck_assert_int_eq(sscanf(strstr(l.text, "grandchild "), "grandchild %d", &gpid), 1);
	ck_assert_int_gt(gpid, 0);
	pb_runner_signal(r, SIGTERM);
	ck_assert(drive(r, 10000));
	ck_assert_int_eq(pb_runner_exit_status(r), 128 + SIGTERM);
	ck_assert_int_eq(waitpid(gpid, &st, 0), gpid);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGTERM);
	sigprocmask(SIG_SETMASK, &old, NULL);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	pb_runner_free(r);
}
END_TEST

START_TEST(free_kills_running_child)
{
	struct pb_runner *r = pb_runner_new(NULL, NULL);
	struct pb_err err = PB_ERR_INIT;
	char *argv[] = { "sleep", "30", NULL };
	int64_t t0 = pb_mono_ms();
	pid_t pid;

	ck_assert_int_eq(pb_runner_start(r, argv, NULL, NULL, &err), PB_RUNNER_STARTED);
	pid = pb_runner_pid(r);
	ck_assert_int_eq(pb_runner_handle(r), 0);
	pb_runner_free(r);
	ck_assert_int_lt(pb_mono_ms() - t0, 5000);
	/* reaped: no such child any more */
	ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
}
END_TEST

/* The runner is reusable: a second run starts with an empty tail. */
START_TEST(tail_resets_between_runs)
{
	struct pb_runner *r = pb_runner_new(NULL, NULL);
	char *argv1[] = { "echo", "first", NULL };
	char *argv2[] = { "true", NULL };
	size_t len;

	ck_assert_int_eq(run(r, argv1, NULL), 0);
	ck_assert_str_eq(pb_runner_tail(r, &len), "first\n");
	ck_assert_int_eq(run(r, argv2, NULL), 0);
	ck_assert_str_eq(pb_runner_tail(r, &len), "");
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(pb_runner_handle(r), 0);	/* nothing running: nothing to do */
	pb_runner_free(r);
	pb_runner_free(NULL);
}
END_TEST

static Suite *runner_suite(void)
{
	Suite *s = suite_create("runner");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_test(tc, exit_statuses);
	tcase_add_test(tc, lines_reach_callback);
	tcase_add_loop_test(tc, child_io, 0, (int)(sizeof(io_cases) / sizeof(io_cases[0])));
	tcase_add_test(tc, tail_of_a_megabyte);
	tcase_add_test(tc, flood_stays_bounded);
	tcase_add_test(tc, extra_env_overrides);
	tcase_add_test(tc, bad_extra_env);
	tcase_add_test(tc, no_shell);
	tcase_add_test(tc, no_shell_fallback);
	tcase_add_test(tc, missing_program);
	tcase_add_test(tc, exec_e2big);
	tcase_add_test(tc, path_search);
	tcase_add_test(tc, inherits_no_fds);
	tcase_add_test(tc, lock_defers_and_releases);
	tcase_add_test(tc, lock_released_after_failed_exec);
	tcase_add_test(tc, start_while_running);
	tcase_add_test(tc, grandchild_does_not_hang);
	tcase_add_test(tc, group_signal_kills_grandchild);
	tcase_add_test(tc, free_kills_running_child);
	tcase_add_test(tc, tail_resets_between_runs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(runner_suite());
}
