/* main.c — provbus-audit: lists, explains, replays and draws the audit
 * log of a provbus-consumer (provbus-audit(1)).
 *
 * One option table for all verbs (options may come before or after the
 * verb); each verb says which options it takes, anything else is a usage
 * error naming the option. The db is opened read-only, inside one read
 * transaction: every query of a command sees one snapshot, and a live
 * daemon's writes (WAL) neither block us nor are blocked. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit-cli.h"
#include "audit.h"
#include "cli.h"
#include "config.h"
#include "log.h"
#include "pbtime.h"

static const char usage_text[] =
	"usage: provbus-audit [-c FILE | -d DB] [-v] VERB [OPTIONS]\n"
	"\n"
	"  events  [--since T] [--until T] [--key K] [--verdict V] [--json]\n"
	"          every event received, with its verdict\n"
	"  runs    [--since T] [--until T] [--json]\n"
	"          every provision run: reason, times, status, events, changed keys\n"
	"  explain RUN_ID [--all] [--json]\n"
	"          the events (grouped by key) and the value changes behind one run\n"
	"  replay  [--since T] [--until T] [--quiet-ms N] [--max-wait-ms N]\n"
	"          [--throttle RUNS/SECONDS] [--tolerance-ms N] [--json]\n"
	"          feeds the inputs the daemon recorded (or, for an older log,\n"
	"          inputs derived from its rows) to the daemon's decision core in\n"
	"          virtual time; with the recorded parameters it checks every\n"
	"          recorded run exactly, with other ones it is a what-if\n"
	"          (--tolerance-ms is accepted and ignored: the check is exact)\n"
	"  timeline --html FILE [--since T] [--until T]\n"
	"          one self-contained HTML page drawing events and runs on a time axis\n"
	"  export  --jsonl\n"
	"          everything, one JSON object per line with a \"type\" field\n"
	"          (event, run, param, note, provider)\n"
	"\n"
	"options:\n"
	"  -d DB         the audit log (default: STATE_DIR/audit.db of the node config)\n"
	"  -c FILE       node config (default $PROVBUS_CONFIG, else " PB_CONFIG_DEFAULT ")\n"
	"  -v            more detail on stderr (repeatable)\n"
	"  -h, --help    this text;  --version  the version\n"
	"  T             RFC 3339 (2026-11-22T03:00:00Z) or relative to now (-2h, -15m,\n"
	"                -30s, -1d, now); --since and --until are inclusive\n"
	"  --json        one JSON object per line\n"
	"  --all         explain: list every event of a key (default: the first 20)\n"
	"\n"
	"exit status: 0 ok; 64 bad usage (unknown verb or option, bad time, unknown\n"
	"verdict); 65 bad data (no such run id, damaged audit log, schema newer than\n"
	"this program); 66 audit log missing, unreadable or not a provbus audit log;\n"
	"73 the timeline file cannot be written; 78 bad node config\n";

enum {
	OPT_SINCE = 0x100, OPT_UNTIL, OPT_KEY, OPT_VERDICT, OPT_JSON, OPT_QUIET, OPT_MAX_WAIT,
	OPT_THROTTLE, OPT_TOLERANCE, OPT_HTML, OPT_JSONL, OPT_ALL, OPT_VERSION,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "db", required_argument, NULL, 'd' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "until", required_argument, NULL, OPT_UNTIL },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "verdict", required_argument, NULL, OPT_VERDICT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet-ms", required_argument, NULL, OPT_QUIET },
	{ "max-wait-ms", required_argument, NULL, OPT_MAX_WAIT },
	{ "throttle", required_argument, NULL, OPT_THROTTLE },
	{ "tolerance-ms", required_argument, NULL, OPT_TOLERANCE },
	{ "html", required_argument, NULL, OPT_HTML },
	{ "jsonl", no_argument, NULL, OPT_JSONL },
	{ "all", no_argument, NULL, OPT_ALL },
	{ NULL, 0, NULL, 0 },
};

/* Which verb-specific options each verb takes (bit = OPT_x - OPT_SINCE). */
#define B(o) (1u << ((o) - OPT_SINCE))

struct verb {
	const char *name;
	int (*fn)(sqlite3 *db, const struct au_opts *o, struct pb_err *err);
	unsigned allowed;
	int nargs;		/* positional arguments after the verb */
};

static const struct verb verbs[] = {
	{ "events", au_cmd_events, B(OPT_SINCE) | B(OPT_UNTIL) | B(OPT_KEY) | B(OPT_VERDICT) | B(OPT_JSON), 0 },
	{ "runs", au_cmd_runs, B(OPT_SINCE) | B(OPT_UNTIL) | B(OPT_JSON), 0 },
	{ "explain", au_cmd_explain, B(OPT_JSON) | B(OPT_ALL), 1 },
	{ "replay", au_cmd_replay,
	  B(OPT_SINCE) | B(OPT_UNTIL) | B(OPT_QUIET) | B(OPT_MAX_WAIT) | B(OPT_THROTTLE) |
		  B(OPT_TOLERANCE) | B(OPT_JSON), 0 },
	{ "timeline", au_cmd_timeline, B(OPT_SINCE) | B(OPT_UNTIL) | B(OPT_HTML), 0 },
	{ "export", au_cmd_export, B(OPT_JSONL), 0 },
};

static const char *const opt_names[] = {
	"--since", "--until", "--key", "--verdict", "--json", "--quiet-ms", "--max-wait-ms",
	"--throttle", "--tolerance-ms", "--html", "--jsonl", "--all",
};

static const char short_usage[] =
	"usage: " AU_PROG " [-c FILE | -d DB] [-v] events|runs|replay [OPTIONS]\n"
	"       " AU_PROG " [-c FILE | -d DB] [-v] explain RUN_ID [--all] [--json]\n"
	"       " AU_PROG " [-c FILE | -d DB] [-v] timeline --html FILE [--since T] [--until T]\n"
	"       " AU_PROG " [-c FILE | -d DB] [-v] export --jsonl\n"
	"try '" AU_PROG " --help' for more\n";

/* A usage error: what is wrong, the short usage, exit 64 (lib/cli.h). */
#define usage_error(...) pb_cli_usage(AU_PROG, short_usage, __VA_ARGS__)

/* A non-negative integer option value (ms). */
static int parse_ms(const char *opt, const char *s, int64_t *out)
{
	char *end;
	long long v;

	v = strtoll(s, &end, 10);
	if (!*s || *end || v < 0)
		return usage_error("%s '%s': want a non-negative integer (milliseconds)", opt, s);
	*out = v;
	return 0;
}

/* RUNS/SECONDS, e.g. 6/600 */
static int parse_throttle(const char *s, struct au_opts *o)
{
	char *end, *end2;
	long runs = strtol(s, &end, 10);
	long long secs;

	if (end == s || *end != '/' || runs < 0 || runs > INT_MAX)
		goto bad;
	secs = strtoll(end + 1, &end2, 10);
	if (end2 == end + 1 || *end2 || secs < 0 || secs > INT64_MAX / 1000)
		goto bad;
	o->throttle_runs = (int)runs;
	o->throttle_per_ms = secs * 1000;
	return 0;
bad:
	return usage_error("--throttle '%s': want RUNS/SECONDS, e.g. 6/600 (0/0: no throttle)", s);
}

static int verdict_ok(const char *v)
{
	enum pb_verdict verdict;

	return pb_verdict_parse(v, &verdict) == 0;
}

/* The db path: -d, else STATE_DIR/audit.db of the node config. */
static char *db_path_from_config(const char *config_arg, struct pb_err *err)
{
	const char *path = pb_config_path(config_arg);
	char *why = NULL, *dir = pb_config_state_dir(path, &why, err);
	char *db = NULL;

	if (!dir) {
		pb_err_prefix(err, "cannot find the audit log (give -d DB or -c FILE)");
		return NULL;
	}
	/* only the state_dir is needed: a typo elsewhere does not hide the log */
	if (why)
		pb_log_warn("%s: using state_dir %s", why, dir);
	if (asprintf(&db, "%s/audit.db", dir) < 0) {
		db = NULL;
		pb_err_set(err, EX_OSERR, "out of memory");
	}
	free(dir);
	free(why);
	return db;
}

int main(int argc, char **argv)
{
	struct au_opts o = { 0 };
	struct pb_err err = PB_ERR_INIT;
	const char *config_arg = NULL, *verb_name = NULL, *run_arg = NULL;
	const struct verb *verb = NULL;
	unsigned given = 0;
	char *db_owned = NULL;
	sqlite3 *db = NULL;
	int c, rc = EX_USAGE, i, nargs = 0;
	int64_t now = pb_now_ms();

	o.tolerance_ms = AU_TOLERANCE_MS_DEFAULT;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:d:hv", long_opts, NULL)) != -1) {
		if (c >= OPT_SINCE && c < OPT_VERSION)
			given |= B(c);
		switch (c) {
		case 'c': config_arg = optarg; break;
		case 'd': o.db_path = optarg; break;
		case 'v': o.verbose++; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case OPT_VERSION: printf(AU_PROG " %s\n", PB_VERSION); return 0;
		case OPT_SINCE: o.since_text = optarg; break;
		case OPT_UNTIL: o.until_text = optarg; break;
		case OPT_KEY: o.key = optarg; break;
		case OPT_VERDICT: o.verdict = optarg; break;
		case OPT_JSON: o.json = 1; break;
		case OPT_JSONL: o.jsonl = 1; break;
		case OPT_ALL: o.all = 1; break;
		case OPT_HTML: o.html = optarg; break;
		case OPT_QUIET:
			if (parse_ms("--quiet-ms", optarg, &o.quiet_ms))
				return EX_USAGE;
			o.has_quiet = 1;
			break;
		case OPT_MAX_WAIT:
			if (parse_ms("--max-wait-ms", optarg, &o.max_wait_ms))
				return EX_USAGE;
			o.has_max_wait = 1;
			break;
		case OPT_TOLERANCE:
			if (parse_ms("--tolerance-ms", optarg, &o.tolerance_ms))
				return EX_USAGE;
			break;
		case OPT_THROTTLE:
			if (parse_throttle(optarg, &o))
				return EX_USAGE;
			o.has_throttle = 1;
			break;
		default:
			return pb_cli_option_error(AU_PROG, short_usage, long_opts, argv, c);
		}
	}
	pb_log_init(AU_PROG, o.verbose);
	for (i = optind; i < argc; i++) {
		if (!verb_name)
			verb_name = argv[i];
		else if (nargs++ == 0)
			run_arg = argv[i];
	}
	if (!verb_name)
		return usage_error("a verb is needed: events, runs, explain, replay, timeline or export");
	for (i = 0; i < (int)(sizeof(verbs) / sizeof(verbs[0])); i++)
		if (!strcmp(verbs[i].name, verb_name))
			verb = &verbs[i];
	if (!verb)
		return usage_error("unknown verb '%s': want events, runs, explain, replay, timeline or export",
				   verb_name);
	for (i = 0; i < (int)(sizeof(opt_names) / sizeof(opt_names[0])); i++)
		if ((given & (1u << i)) && !(verb->allowed & (1u << i)))
			return usage_error("%s does not take %s", verb->name, opt_names[i]);
	if (nargs != verb->nargs) {
		if (verb->nargs)
			return usage_error("%s: want a RUN_ID (a number from 'provbus-audit runs')",
					   verb->name);
		return usage_error("%s: unexpected argument '%s'", verb->name, run_arg);
	}
	if (run_arg) {
		char *end;
		long long id = strtoll(run_arg, &end, 10);

		if (!*run_arg || *end || id < 0)
			return usage_error("explain: run id '%s': want a number from 'provbus-audit runs'",
					   run_arg);
		o.run_id = id;
	}
	if (o.since_text) {
		if (pb_time_parse(o.since_text, now, &o.since, &err) < 0)
			return usage_error("--since: %s", err.msg);
		o.has_since = 1;
	}
	if (o.until_text) {
		if (pb_time_parse(o.until_text, now, &o.until, &err) < 0)
			return usage_error("--until: %s", err.msg);
		o.has_until = 1;
	}
	if (o.verdict && !verdict_ok(o.verdict))
		return usage_error("--verdict '%s': unknown verdict; want one of %s", o.verdict,
				   PB_VERDICT_LIST);
	if (!strcmp(verb->name, "timeline") && !o.html)
		return usage_error("timeline: want --html FILE");
	if (!strcmp(verb->name, "export") && !o.jsonl)
		return usage_error("export: want --jsonl (the only format)");

	if (!o.db_path) {
		db_owned = db_path_from_config(config_arg, &err);
		if (!db_owned)
			goto fail;
		o.db_path = db_owned;
	}
	/* one thread: sqlite's mutexes cost a fifth of a replay's CPU */
	sqlite3_config(SQLITE_CONFIG_SINGLETHREAD);
	db = pb_audit_open(o.db_path, 1, &err);
	if (!db) {
		if (access(o.db_path, F_OK) < 0) {
			size_t len = strlen(err.msg);

			if (db_owned)
				snprintf(err.msg + len, sizeof(err.msg) - len,
					 " (the audit log of %s: has provbus-consumer run on this node?"
					 " give another log with -d DB)", pb_config_path(config_arg));
			else
				snprintf(err.msg + len, sizeof(err.msg) - len,
					 " (give the audit log with -d DB, or the node config with -c FILE)");
		}
		goto fail;
	}
	/* one snapshot for the whole command */
	if (pb_audit_exec(db, "BEGIN", o.db_path, &err) < 0)
		goto fail;
	if (verb->fn(db, &o, &err) < 0)
		goto fail;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		pb_err_set(&err, EX_IOERR, "writing to stdout failed");
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	pb_log_err("%s", err.msg);
	rc = err.code ? err.code : EX_SOFTWARE;
out:
	if (db) {
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		pb_audit_close(db);
	}
	free(db_owned);
	au_esc_release();
	return rc;
}
