/* cli.c — the usage errors of every provbus program (cli.h). */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "textesc.h"

int pb_cli_usage(const char *prog, const char *usage, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the message may quote a word of the command line: escaped */
	fprintf(stderr, "%s: ", prog);
	pb_textesc_fputs(stderr, msg);
	fprintf(stderr, "\n%s", usage);
	return EX_USAGE;
}

/* The option getopt_long stopped at, as written: "--name" (without
 * "=value") when arg is the long option whose val is opt (or an unknown
 * long one: opt 0), else "-opt" (argv may hold several short options in
 * one word, "-vx", or the word before may be a long one). */
static const char *option_text(const struct option *longopts, const char *arg, int opt,
			       char *buf, size_t size)
{
	size_t n = strcspn(arg, "=");
	int is_long = 0;

	if (!strncmp(arg, "--", 2)) {
		is_long = opt == 0;
		for (const struct option *o = longopts; o->name && !is_long; o++)
			is_long = o->val == opt && !strncmp(o->name, arg + 2, n - 2);
	}
	if (is_long)
		snprintf(buf, size, "%.*s", (int)n, arg);
	else
		snprintf(buf, size, "-%c", opt);
	return buf;
}

int pb_cli_option_error(const char *prog, const char *usage, const struct option *longopts,
			char **argv, int c)
{
	char text[64];

	option_text(longopts, argv[optind - 1], optopt, text, sizeof(text));
	if (c == ':')
		return pb_cli_usage(prog, usage, "option %s needs an argument", text);
	if (optopt && text[1] == '-')
		return pb_cli_usage(prog, usage, "option %s takes no argument", text);
	return pb_cli_usage(prog, usage, "unknown option %s", text);
}
