/* running.c — find the running provbus-consumer of a configuration file
 * (see running.h). The control verbs need only the daemon's control socket
 * in its state_dir; when the file on disk does not parse (truncated by an
 * interrupted template write, a stray brace before "state_dir") the
 * daemon that runs the last good configuration still knows where that is:
 * its command line names the file, and its open audit log names the
 * directory. */
#include "running.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAEMON_COMM "provbus-consume"	/* /proc/PID/comm: 15 bytes of provbus-consumer */
#define CMDLINE_MAX 65536
#define AUDIT_TAIL "/audit.db"		/* STATE_DIR/audit.db, held open by the daemon */

const char *pb_running_config_arg(const char *args, size_t len, int *is_run)
{
	const char *p = args, *end = args + len, *conf = NULL;
	int first = 1, opts = 1;

	*is_run = 0;
	while (p < end) {
		size_t n = strnlen(p, (size_t)(end - p));
		const char *next = p + n + 1;

		if (first) {
			first = 0;	/* argv[0] */
		} else if (opts && (!strcmp(p, "-c") || !strcmp(p, "--config"))) {
			if (next < end)
				conf = next, next += strnlen(next, (size_t)(end - next)) + 1;
		} else if (opts && !strncmp(p, "--config=", 9)) {
			conf = p + 9;
		} else if (opts && p[0] == '-' && p[1] == 'c' && p[2]) {
			conf = p + 2;
		} else if (!strcmp(p, "--")) {
			opts = 0;
		} else if (!strcmp(p, "run")) {
			*is_run = 1;
		}
		p = next;
	}
	return conf;
}

/* len bytes of /proc/PID/NAME into buf (NUL-terminated); -1 on failure */
static ssize_t read_proc(const char *pid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n, got = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/%s", pid, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while ((size_t)got < size - 1 && (n = read(fd, buf + got, size - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	return got;
}

/* 1 when the daemon pid's configuration file is want (device and inode) */
static int same_config(const char *pid, const char *args, size_t len, const char *default_path,
		       const struct stat *want)
{
	char path[PATH_MAX + 64];
	const char *conf;
	struct stat st;
	int is_run;

	conf = pb_running_config_arg(args, len, &is_run);
	if (!is_run)
		return 0;	/* a control client, not the daemon */
	if (!conf)
		conf = default_path;
	if (conf[0] == '/')
		snprintf(path, sizeof(path), "%s", conf);
	else
		snprintf(path, sizeof(path), "/proc/%s/cwd/%s", pid, conf);
	return stat(path, &st) == 0 && st.st_dev == want->st_dev && st.st_ino == want->st_ino;
}

/* the directory of the audit log pid holds open, or NULL */
static char *audit_dir(const char *pid)
{
	char dir[64], link[64 + 256], target[PATH_MAX + 1];
	struct dirent *e;
	char *found = NULL;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
	if (!(d = opendir(dir)))
		return NULL;
	while (!found && (e = readdir(d)) != NULL) {
		ssize_t n;
		size_t tl = strlen(AUDIT_TAIL);

		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= (ssize_t)tl || target[0] != '/')
			continue;
		target[n] = '\0';
		if (!strcmp(target + n - tl, AUDIT_TAIL))
			found = strndup(target, (size_t)n - tl);
	}
	closedir(d);
	return found;
}

char *pb_running_state_dir(const char *config_path, const char *default_path)
{
	struct stat want;
	struct dirent *e;
	char *args, comm[32], self[32], *dir = NULL;
	DIR *d;

	if (stat(config_path, &want) || !(d = opendir("/proc")))
		return NULL;
	if (!(args = malloc(CMDLINE_MAX))) {
		closedir(d);
		return NULL;
	}
	snprintf(self, sizeof(self), "%ld", (long)getpid());
	while (!dir && (e = readdir(d)) != NULL) {
		ssize_t len;

		if (!isdigit((unsigned char)e->d_name[0]) || !strcmp(e->d_name, self))
			continue;
		if (read_proc(e->d_name, "comm", comm, sizeof(comm)) <= 0 ||
		    strncmp(comm, DAEMON_COMM, strlen(DAEMON_COMM)))
			continue;
		len = read_proc(e->d_name, "cmdline", args, CMDLINE_MAX);
		if (len > 0 && same_config(e->d_name, args, (size_t)len, default_path, &want))
			dir = audit_dir(e->d_name);
	}
	free(args);
	closedir(d);
	return dir;
}
