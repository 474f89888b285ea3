/* pbtest-notifywait — how long a daemon takes from exec to READY=1.
 *
 *   pbtest-notifywait [--timeout-ms T] [--keep] -- CMD [ARGS...]
 *
 * Binds an AF_UNIX datagram socket in a fresh temp directory, starts CMD
 * with NOTIFY_SOCKET pointing at it (as systemd would for Type=notify),
 * and waits for a datagram holding the line READY=1. Prints
 *
 *   ready_ms MS        (monotonic ms from just before fork to READY=1)
 *
 * then stops CMD with SIGTERM and waits for it (printing "exit N"), unless
 * --keep, which prints "pid PID" and leaves it running (its later
 * notifications then go nowhere). Other datagrams (STATUS=, WATCHDOG=1)
 * are ignored. Exit 0 when READY=1 came; 1 when CMD exited first or T ms
 * (default 60000) passed (CMD is then killed); 64 on usage. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* 1 when the datagram (n bytes, newline-separated assignments) has READY=1. */
static int has_ready(const char *buf, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;
		while (j < n && buf[j] != '\n')
			j++;
		if (j - i == 7 && !memcmp(buf + i, "READY=1", 7))
			return 1;
		i = j + 1;
	}
	return 0;
}

/* SIGTERM, then SIGKILL after 70 s (the daemon waits up to 60 s for a run). */
static int stop_child(pid_t pid)
{
	int st = 0;

	kill(pid, SIGTERM);
	for (int i = 0; i < 7000; i++) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return 128 + SIGKILL;
}

int main(int argc, char **argv)
{
	long timeout_ms = 60000;
	int keep = 0, first = 0, fd = -1, rc = 1, ready = 0;
	char dir[] = "/tmp/pbtest-notify.XXXXXX";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t t0, t1 = 0;
	pid_t pid = -1;

	for (int i = 1; i < argc && !first; i++) {
		if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
			timeout_ms = atol(argv[++i]);
		else if (!strcmp(argv[i], "--keep"))
			keep = 1;
		else if (!strcmp(argv[i], "--"))
			first = i + 1;
		else
			break;
	}
	if (!first || first >= argc) {
		fprintf(stderr, "usage: pbtest-notifywait [--timeout-ms T] [--keep] -- CMD [ARGS...]\n");
		return EX_USAGE;
	}
	if (!mkdtemp(dir)) {
		perror("pbtest-notifywait: mkdtemp");
		return 1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("pbtest-notifywait: socket");
		goto out;
	}
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	t0 = mono_us();
	pid = fork();
	if (pid < 0) {
		perror("pbtest-notifywait: fork");
		goto out;
	}
	if (pid == 0) {
		execvp(argv[first], argv + first);
		fprintf(stderr, "pbtest-notifywait: %s: %s\n", argv[first], strerror(errno));
		_exit(127);
	}
	while (!ready) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = timeout_ms - (mono_us() - t0) / 1000;
		int st;

		if (left <= 0) {
			fprintf(stderr, "pbtest-notifywait: no READY=1 from %s within %ld ms\n",
				argv[first], timeout_ms);
			goto out;
		}
		if (poll(&p, 1, left > 50 ? 50 : (int)left) > 0) {
			char buf[4096];
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			if (n > 0 && has_ready(buf, (size_t)n)) {
				t1 = mono_us();
				ready = 1;
			}
			continue;
		}
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "pbtest-notifywait: %s exited (status %d) before READY=1\n",
				argv[first], WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
			pid = -1;
			goto out;
		}
	}
	printf("ready_ms %.3f\n", (double)(t1 - t0) / 1000.0);
	if (keep) {
		printf("pid %ld\n", (long)pid);
		pid = -1;
	} else {
		printf("exit %d\n", stop_child(pid));
		pid = -1;
	}
	rc = 0;
out:
	if (pid > 0)
		stop_child(pid);
	if (fd >= 0)
		close(fd);
	unlink(sa.sun_path);
	rmdir(dir);
	fflush(stdout);
	return rc;
}
