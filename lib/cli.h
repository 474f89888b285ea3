/* cli.h — what the command lines of every provbus program share: the
 * shape of a usage error (docs/protocol.md §6: "PROG: what is wrong", then the short
 * usage, exit 64) and the naming of the option getopt_long stopped at. */
#ifndef PB_CLI_H
#define PB_CLI_H

#include <getopt.h>

/* Prints "PROG: MESSAGE\n" and then usage (the short usage, ending with
 * a newline) to stderr. Returns EX_USAGE (64). Each program wraps it in
 * a usage_error(FMT, ...) macro naming its own PROG and short usage. */
int pb_cli_usage(const char *prog, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* getopt_long (run with opterr = 0 and an optstring starting with ':')
 * returned c, ':' or '?', for the word argv[optind - 1]: the usage error
 * naming the option as written ("--name" without its "=value", or "-x"):
 * "option X needs an argument", "option X takes no argument" or "unknown
 * option X". Returns EX_USAGE. */
int pb_cli_option_error(const char *prog, const char *usage, const struct option *longopts,
			char **argv, int c);

#endif
