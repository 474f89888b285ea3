/* main.c — provbus-consumer's command line (docs/protocol.md §6, provbus-consumer(1)).
 *
 *   provbus-consumer [-c FILE] [-f] [-v...] run
 *   provbus-consumer [-c FILE] status [--prometheus]
 *   provbus-consumer [-c FILE] pause | resume | provision-now
 *   provbus-consumer [-c FILE] -n        check config and manifests
 *
 * The control verbs are a tiny client of the daemon's control socket
 * (state_dir/control.sock); `status --prometheus` converts the daemon's
 * JSON here. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "config.h"
#include "consumer.h"
#include "control.h"
#include "log.h"
#include "textesc.h"

#define PROG "provbus-consumer"
#define CONTROL_TIMEOUT_MS 10000

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [-c FILE] [-f] [-v...] run\n"
		"       " PROG " [-c FILE] status [--prometheus]\n"
		"       " PROG " [-c FILE] pause | resume | provision-now\n"
		"       " PROG " [-c FILE] -n\n"
		"\n"
		"  run            the daemon: consume provisioning events, run the provision command\n"
		"  status         the daemon's state as JSON (--prometheus: Prometheus text)\n"
		"  pause, resume  hold runs (events are still received) / let them go again\n"
		"  provision-now  queue a run at once (as SIGUSR1 does)\n"
		"\n"
		"  -c FILE        configuration (default $PROVBUS_CONFIG, else " PB_CONFIG_DEFAULT ")\n"
		"  -f             foreground (the daemon always stays in the foreground and logs to\n"
		"                 stderr; accepted for compatibility)\n"
		"  -n             check the configuration and the manifests, print \"configuration OK\"\n"
		"  -v             more log (repeat for debug)\n"
		"  -h, --help     this text;  --version  the version\n");
}

static const char short_usage[] =
"usage: " PROG " [-c FILE] [-f] [-v...] run\n"
"       " PROG " [-c FILE] status [--prometheus]\n"
"       " PROG " [-c FILE] pause | resume | provision-now\n"
"       " PROG " [-c FILE] -n\n"
"try '" PROG " --help' for more\n";

/* A usage error: what is wrong, the short usage, exit 64 (lib/cli.h). */
#define usage_error(...) pb_cli_usage(PROG, short_usage, __VA_ARGS__)

static int fail(const struct pb_err *e)
{
	pb_log_err("%s", e->msg);
	return e->code ? e->code : EX_SOFTWARE;
}

/* A directory a run writes a file into (the env file's, the lock's). */
static int check_dir_of(const char *what, const char *file, struct pb_err *err)
{
	char *copy = strdup(file), *dir;
	struct stat st;
	int rc = 0;

	if (!copy)
		return pb_err_set(err, EX_OSERR, "out of memory");
	dir = dirname(copy);
	if (stat(dir, &st) < 0)
		rc = pb_err_set(err, EX_CONFIG, "%s %s: its directory %s: %s", what, file, dir,
				strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		rc = pb_err_set(err, EX_CONFIG, "%s %s: %s is not a directory", what, file, dir);
	else if (access(dir, W_OK | X_OK) < 0)
		rc = pb_err_set(err, EX_CONFIG, "%s %s: directory %s not writable: %s", what, file,
				dir, strerror(errno));
	free(copy);
	return rc;
}

/* -n: what a run would need besides a configuration that parses: the
 * password file readable, the env file's directory writable, the provision
 * command executable, every manifest's provides templates expandable. */
static int check_run_needs(const struct cs_conf *conf, struct pb_err *err)
{
	const struct pb_config *cfg = conf->cfg;
	const struct pb_consumer_conf *cc = &cfg->consumer;
	int fd;

	if (cfg->password_file) {
		if ((fd = open(cfg->password_file, O_RDONLY | O_CLOEXEC)) < 0)
			return pb_err_set(err, EX_CONFIG, "broker.password_file %s: %s",
					  cfg->password_file, strerror(errno));
		close(fd);
	}
	if (check_dir_of("consumer.env_file", cc->env_file, err) < 0)
		return -1;
	if (cc->provision && strchr(cc->provision[0], '/') && access(cc->provision[0], X_OK) < 0)
		return pb_err_set(err, EX_CONFIG, "consumer.provision %s: %s", cc->provision[0],
				  strerror(errno));
	for (size_t i = 0; i < conf->ms.n; i++) {
		struct pb_kv *kv = NULL;
		size_t n = 0;

		if (pb_manifest_expand(conf->ms.items[i], cfg, &kv, &n, err) < 0)
			return -1;
		pb_kv_free_array(kv, n);
	}
	return 0;
}

static int cmd_check(const char *path)
{
	struct pb_err err = PB_ERR_INIT;
	struct cs_conf conf;
	int rc;

	if (cs_conf_load(path, &conf, &err) < 0)
		return fail(&err);
	rc = check_run_needs(&conf, &err) < 0 ? fail(&err) : 0;
	if (!rc)
		printf("configuration OK\n");
	cs_conf_release(&conf);
	return rc;
}

static int cmd_run(const char *path)
{
	struct pb_err err = PB_ERR_INIT;

	if (cs_daemon_run(path, &err) < 0)
		return fail(&err);
	return 0;
}

/* 1 when the daemon's answer is {"error": ...}. */
static int daemon_refused(const char *answer)
{
	json_t *o = json_loads(answer, 0, NULL);
	int refused = !o || json_object_get(o, "error") != NULL;

	json_decref(o);
	return refused;
}

/* The daemon's JSON answer on stdout, with nothing in it that drives a
 * terminal, whichever version of the daemon wrote it: DEL, C1 and bidi
 * controls as \uXXXX (the same JSON value); an answer that still holds a
 * raw control byte (not JSON then) escaped as text. */
static void print_answer(const char *answer)
{
	char *safe = pb_textesc_json(answer);

	if (safe && !pb_textesc_check(safe, strlen(safe), NULL, 0, NULL)) {
		puts(safe);
	} else {
		pb_textesc_fputs(stdout, answer);
		putchar('\n');
	}
	free(safe);
}

/* status, pause, resume, provision-now: one line to the daemon, its answer
 * on stdout. */
static int cmd_control(const char *path, const char *verb, int prometheus)
{
	struct pb_err err = PB_ERR_INIT;
	char *why = NULL, *dir = pb_config_state_dir(path, &why, &err);
	char sock[4200], *answer = NULL, *text = NULL;
	int rc;

	/* the verbs need only the control socket: a configuration broken on
	 * disk (the daemon still runs the last good one) must not blind
	 * monitoring or pause (provbus-consumer(1)) */
	if (!dir)
		return fail(&err);
	if (why)
		pb_log_warn("%s (the daemon keeps its last good configuration): using state_dir %s",
			    why, dir);
	snprintf(sock, sizeof(sock), "%s/control.sock", dir);
	free(dir);
	free(why);
	answer = pb_control_call(sock, verb, CONTROL_TIMEOUT_MS, &err);
	if (!answer)
		return fail(&err);
	if (daemon_refused(answer)) {
		pb_log_err("the daemon answered: %s", answer);
		free(answer);
		return EX_SOFTWARE;
	}
	if (prometheus) {
		if (cs_status_prometheus(answer, &text) < 0) {
			pb_log_err("the daemon's status is not JSON: %s", answer);
			rc = EX_PROTOCOL;
		} else {
			fputs(text, stdout);
			rc = 0;
		}
	} else {
		print_answer(answer);
		rc = 0;
	}
	free(text);
	free(answer);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "config", required_argument, NULL, 'c' },
		{ "prometheus", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *verb = NULL;
	int verbose = 0, check = 0, prometheus = 0, opt;

	/* options may come before or after the verb ("status --prometheus") */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:fvnh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'f':
			break;
		case 'v':
			verbose++;
			break;
		case 'n':
			check = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf(PROG " %s\n", PB_VERSION);
			return 0;
		case 'P':
			prometheus = 1;
			break;
		default:
			return pb_cli_option_error(PROG, short_usage, longopts, argv, opt);
		}
	}
	if (optind < argc)
		verb = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	pb_log_init(PROG, verbose);
	config = pb_config_path(config);
	if (check)
		return cmd_check(config);
	if (!verb)
		return usage_error("a verb is needed: run, status, pause, resume or provision-now");
	if (prometheus && strcmp(verb, "status"))
		return usage_error("--prometheus goes with status only");
	if (!strcmp(verb, "run"))
		return cmd_run(config);
	if (!strcmp(verb, "status") || !strcmp(verb, "pause") || !strcmp(verb, "resume") ||
	    !strcmp(verb, "provision-now"))
		return cmd_control(config, verb, prometheus);
	return usage_error("unknown verb '%s': use run, status, pause, resume or provision-now", verb);
}
