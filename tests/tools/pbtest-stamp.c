/* pbtest-stamp — the provision command of the benchmarks (make bench).
 *
 *   pbtest-stamp FILE [--tag T] [--sleep-ms N] [--stdin]
 *
 * Appends "US start TAG PID REASON\n" to FILE the moment it runs (US: wall-clock
 * microseconds since the epoch, CLOCK_REALTIME, comparable with bash's
 * $EPOCHREALTIME), then optionally drains stdin (--stdin: amqp-consume and
 * Serf hand the message on stdin, and a writer must not get EPIPE), sleeps
 * N ms, and appends "US end TAG PID REASON\n" (REASON: $PROVBUS_REASON,
 * which provbus-consumer sets, else "-"). Each line is one write(2) to a
 * file opened O_APPEND, so many concurrent stampers (the fan-out bench)
 * never interleave inside a line. TAG defaults to $PBTEST_STAMP_TAG, else
 * "-". Exit 0, or 1 when FILE cannot be written, 64 on usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int stamp(int fd, int64_t us, const char *what, const char *tag)
{
	const char *reason = getenv("PROVBUS_REASON");
	char line[512];
	int n = snprintf(line, sizeof(line), "%lld %s %s %ld %s\n", (long long)us, what, tag,
			 (long)getpid(), reason && *reason ? reason : "-");

	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return write(fd, line, (size_t)n) == n ? 0 : -1;
}

static void drain_stdin(void)
{
	char buf[4096];

	while (read(0, buf, sizeof(buf)) > 0)
		;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	int64_t t0 = now_us();
	const char *file = NULL, *tag = getenv("PBTEST_STAMP_TAG");
	long sleep = 0;
	int use_stdin = 0, bad = 0, fd, rc = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tag") && i + 1 < argc)
			tag = argv[++i];
		else if (!strcmp(argv[i], "--sleep-ms") && i + 1 < argc)
			sleep = atol(argv[++i]);
		else if (!strcmp(argv[i], "--stdin"))
			use_stdin = 1;
		else if (argv[i][0] != '-' && !file)
			file = argv[i];
		else
			bad = 1;
	}
	if (!file || bad) {
		fprintf(stderr, "usage: pbtest-stamp FILE [--tag T] [--sleep-ms N] [--stdin]\n");
		return EX_USAGE;
	}
	if (!tag || !*tag)
		tag = "-";
	fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "pbtest-stamp: %s: %s\n", file, strerror(errno));
		return 1;
	}
	if (stamp(fd, t0, "start", tag) < 0)
		goto out;
	if (use_stdin)
		drain_stdin();
	if (sleep > 0)
		sleep_ms(sleep);
	if (stamp(fd, now_us(), "end", tag) < 0)
		goto out;
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "pbtest-stamp: %s: cannot write: %s\n", file, strerror(errno));
	close(fd);
	return rc;
}
