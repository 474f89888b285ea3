#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "textesc.h"

static const char *log_prog = "provbus";
static int log_max = PB_LOG_NOTICE;
static int log_journal;

static int stderr_is_journal(void);

void pb_log_init(const char *prog, int verbosity)
{
	log_prog = prog;
	log_max = PB_LOG_NOTICE + verbosity;
	if (log_max > PB_LOG_DEBUG)
		log_max = PB_LOG_DEBUG;
	log_journal = stderr_is_journal();
}

/* systemd's rule: $JOURNAL_STREAM ("DEVICE:INODE") names the stream the
 * journal gave the service; only when stderr is that very stream are the
 * <N> priority prefixes read (a child of the daemon inherits the variable
 * but writes into a pipe, where a prefix would be noise). */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char end;

	if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &end) != 2 || fstat(2, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int pb_log_enabled(int level)
{
	return level <= log_max;
}

static const char *level_name(int level)
{
	switch (level) {
	case PB_LOG_ERR: return "error";
	case PB_LOG_WARN: return "warning";
	case PB_LOG_NOTICE: return "notice";
	case PB_LOG_INFO: return "info";
	default: return "debug";
	}
}

void pb_log(int level, const char *fmt, ...)
{
	char line[4096];
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one event, one line, and no byte of a value, name or detail that
	 * drives a terminal: newlines and every control escaped (textesc.h) */
	if (log_journal)
		fprintf(stderr, "<%d>", level);
	else
		fprintf(stderr, "%s: %s: ", log_prog, level_name(level));
	pb_textesc_fputs(stderr, line);
	fputc('\n', stderr);
}
