/* test_sdnotify.c — notify datagrams to a path and an abstract socket,
 * the no-systemd no-op, and the watchdog interval. */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"
#include "suite_main.h"

static char tmpdir[64];

static void setup(void)
{
	strcpy(tmpdir, "/tmp/pb-sdnotify-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void teardown(void)
{
	char cmd[128];

	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A datagram socket like systemd's: at a path, or abstract ("@name"). */
static int listen_dgram(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(len, sizeof(sa.sun_path));
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
	return fd;
}

static void expect_datagram(int fd, const char *want)
{
	char buf[4096];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, want);
}

START_TEST(notify_to_path)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/notify", tmpdir);
	fd = listen_dgram(path);
	setenv("NOTIFY_SOCKET", path, 1);
	ck_assert_int_eq(pb_sd_notify("READY=1"), 0);
	expect_datagram(fd, "READY=1");
	ck_assert_int_eq(pb_sd_notify("READY=1\nSTATUS=consuming"), 0);
	expect_datagram(fd, "READY=1\nSTATUS=consuming");
	ck_assert_int_eq(pb_sd_notifyf("STATUS=%d pending, last run %s", 3, "ok"), 0);
	expect_datagram(fd, "STATUS=3 pending, last run ok");
	close(fd);
}
END_TEST

START_TEST(notifyf_long)
{
	char path[128], *want;
	int fd;

	snprintf(path, sizeof(path), "%s/notify", tmpdir);
	fd = listen_dgram(path);
	setenv("NOTIFY_SOCKET", path, 1);
	want = malloc(3001);
	memset(want, 'y', 3000);
	want[3000] = '\0';
	ck_assert_int_eq(pb_sd_notifyf("STATUS=%s", want + 7), 0);
	memcpy(want, "STATUS=", 7);
	expect_datagram(fd, want);
	free(want);
	close(fd);
}
END_TEST

START_TEST(notify_abstract)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@pb-sdnotify-test-%ld", (long)getpid());
	fd = listen_dgram(name);
	setenv("NOTIFY_SOCKET", name, 1);
	ck_assert_int_eq(pb_sd_notify("WATCHDOG=1"), 0);
	expect_datagram(fd, "WATCHDOG=1");
	close(fd);
}
END_TEST

START_TEST(no_notify_socket)
{
	ck_assert_int_eq(pb_sd_notify("READY=1"), 0);
	ck_assert_int_eq(pb_sd_notifyf("STATUS=%s", "x"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	ck_assert_int_eq(pb_sd_notify("READY=1"), 0);
}
END_TEST

START_TEST(notify_fails)
{
	char path[128];

	/* nobody listens there */
	snprintf(path, sizeof(path), "%s/gone", tmpdir);
	setenv("NOTIFY_SOCKET", path, 1);
	errno = 0;
	ck_assert_int_eq(pb_sd_notify("READY=1"), -1);
	ck_assert_int_eq(errno, ENOENT);
	/* a form we do not speak */
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	ck_assert_int_eq(pb_sd_notify("READY=1"), -1);
	ck_assert_int_eq(errno, EAFNOSUPPORT);
}
END_TEST

START_TEST(watchdog_interval)
{
	static const struct {
		const char *usec;
		const char *pid;	/* "self" = ours */
		int64_t ms;
	} cases[] = {
		{ NULL, NULL, 0 },
		{ "30000000", NULL, 30000 },
		{ "30000000", "self", 30000 },
		{ "30000000", "1", 0 },			/* meant for another process */
		{ "30000000", "", 30000 },
		{ "30000000", "junk", 0 },
		{ "1500", NULL, 1 },
		{ "999", NULL, 1 },
		{ "0", NULL, 0 },
		{ "", NULL, 0 },
		{ "-5", NULL, 0 },
		{ "12abc", NULL, 0 },
		{ " 100000", NULL, 0 },
		{ "99999999999999999999999", NULL, 0 },	/* overflows */
	};
	char self[32];

	snprintf(self, sizeof(self), "%ld", (long)getpid());
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].usec)
			setenv("WATCHDOG_USEC", cases[i].usec, 1);
		else
			unsetenv("WATCHDOG_USEC");
		if (cases[i].pid)
			setenv("WATCHDOG_PID", strcmp(cases[i].pid, "self") ? cases[i].pid : self, 1);
		else
			unsetenv("WATCHDOG_PID");
		ck_assert_msg(pb_sd_watchdog_ms() == cases[i].ms, "case %zu: USEC=%s PID=%s: %lld",
			      i, cases[i].usec ? cases[i].usec : "(unset)",
			      cases[i].pid ? cases[i].pid : "(unset)", (long long)pb_sd_watchdog_ms());
	}
}
END_TEST

static Suite *sdnotify_suite(void)
{
	Suite *s = suite_create("sdnotify");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, notify_to_path);
	tcase_add_test(tc, notifyf_long);
	tcase_add_test(tc, notify_abstract);
	tcase_add_test(tc, no_notify_socket);
	tcase_add_test(tc, notify_fails);
	tcase_add_test(tc, watchdog_interval);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(sdnotify_suite());
}
