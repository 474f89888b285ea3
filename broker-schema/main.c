/* provbus-schema — declares, verifies and exports the broker topology
 * (docs/protocol.md §2). */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <amqp.h>

#include "apply.h"
#include "cli.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "mgmt.h"
#include "session.h"
#include "topology.h"

static const char usage_text[] =
	"usage: provbus-schema [-c FILE] [--url URL] [-v] apply  TOPOLOGY.json\n"
	"       provbus-schema [-c FILE] [--url URL] [-v] verify TOPOLOGY.json\n"
	"       provbus-schema export --credentials DIR | --no-users TOPOLOGY.json\n"
	"\n"
	"  apply    declares the exchanges, history streams, dead-letter and unrouted\n"
	"           objects and their bindings (idempotent); prints what it created\n"
	"  verify   checks that every exchange and queue exists (passive declares);\n"
	"           exit 1 listing each missing one. Bindings are not checked: AMQP\n"
	"           has no passive check for them (use the management API)\n"
	"  export   prints RabbitMQ definitions JSON (rabbitmqctl import_definitions,\n"
	"           or load_definitions at boot): the objects above, the streams'\n"
	"           retention policies and, with --credentials, a user per node and\n"
	"           the read-only provbus-observer user, with their permissions;\n"
	"           importing it again never changes a password\n"
	"\n"
	"  --credentials DIR  export: the password of user U is the first line of\n"
	"              DIR/U, created when missing (32 random bytes in base64, mode\n"
	"              0600) and never overwritten; give DIR/NODE to the node as\n"
	"              its broker.password_file\n"
	"  --no-users  export: no users and no permissions (users made elsewhere,\n"
	"              or nodes logging in with a TLS client certificate)\n"
	"\n"
	"  -c FILE     node configuration (default $PROVBUS_CONFIG, else "
	PB_CONFIG_DEFAULT ");\n"
	"              its first broker URL, password file and TLS settings are used\n"
	"              when --url is not given\n"
	"  --url URL   the broker (amqp[s]://USER@HOST:PORT[/VHOST]); the work is\n"
	"              always done in the topology's vhost. The password comes from\n"
	"              the password file of -c FILE (or $PROVBUS_CONFIG), else it is\n"
	"              asked on the terminal\n"
	"  --management-url http://HOST[:PORT]  apply: the management API that sets\n"
	"              the streams' retention policies (AMQP cannot); default the\n"
	"              broker's host, port 15672. A failure without this option:\n"
	"              a warning giving the rabbitmqctl set_policy commands\n"
	"  -v          more logging (repeatable)\n"
	"  -h, --help  this text;  --version  the version\n"
	"\n"
	"exit status: 0 ok; 1 verify found objects missing (each listed); 64 bad\n"
	"usage; 65 bad topology file (FILE:LINE:COLUMN) or empty password file; 66\n"
	"topology or configuration file missing; 69 broker unreachable; 77 access refused by the broker; 78\n"
	"configuration error (bad node config, --url naming another vhost, an object\n"
	"existing with other arguments); 73 a password file cannot be created\n";

static const char short_usage[] =
	"usage: provbus-schema [-c FILE] [--url URL] [-v] apply|verify TOPOLOGY.json\n"
	"       provbus-schema export --credentials DIR | --no-users TOPOLOGY.json\n"
	"try 'provbus-schema --help' for more\n";

/* A usage error: what is wrong, the short usage, exit 64 (lib/cli.h). */
#define usage_error(...) pb_cli_usage("provbus-schema", short_usage, __VA_ARGS__)

/* 1 if url names a vhost (a non-empty path) */
static int url_names_vhost(const char *url)
{
	const char *p = strstr(url, "://");

	p = p ? p + 3 : url;
	p += strcspn(p, "/");
	return *p == '/' && p[1] != '\0';
}

/* A --url naming another vhost than the topology's is a configuration
 * error: it would be silently ignored otherwise. */
static int check_url_vhost(const char *url, const char *vhost, struct pb_err *err)
{
	struct amqp_connection_info ci;
	char shown[512], *copy;
	int rc = -1;

	pb_session_redact_url(url, shown, sizeof(shown));
	copy = strdup(url);
	if (!copy)
		return pb_err_set(err, EX_OSERR, "out of memory");
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
		pb_err_set(err, EX_USAGE, "--url %s: not amqp[s]://USER@HOST[:PORT][/VHOST]", shown);
		goto out;
	}
	if (url_names_vhost(url) && strcmp(ci.vhost, vhost)) {
		pb_err_set(err, EX_CONFIG,
			   "--url %s names vhost '%s' but the topology's vhost is '%s': drop the path from the URL or fix the topology",
			   shown, ci.vhost, vhost);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(copy, strlen(copy));
	free(copy);
	return rc;
}

/* Asks for the password of shown (a redacted URL) on the terminal, echo
 * off: an operator's --url carries no password (never in argv). Returns
 * a new string, or NULL when there is no terminal. */
static char *ask_password(const char *shown)
{
	struct termios old, quiet;
	char buf[512], *pw = NULL;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), restore = 0;
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (tcgetattr(fd, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
	}
	dprintf(fd, "password for %s: ", shown);
	n = read(fd, buf, sizeof(buf) - 1);
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	dprintf(fd, "\n");
	if (n > 0) {
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		buf[n] = '\0';
		pw = strdup(buf);
	}
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return pw;
}

/* The first line of path, or NULL with err. */
static char *first_line(const char *path, struct pb_err *err)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = -1;

	if (f) {
		n = getline(&line, &cap, f);
		fclose(f);
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n <= 0) {
		free(line);
		pb_err_set(err, EX_CONFIG, "password file %s: no password in it", path);
		return NULL;
	}
	return line;
}

/* Sets the retention policies through the management API, with the
 * broker user and password apply logged in with. Without an explicit
 * --management-url, a failure is a warning that gives the rabbitmqctl
 * commands instead. */
static int set_policies(const struct topology *t, const char *amqp_url, const char *mgmt_url,
			const char *password, const char *password_file, struct pb_err *err)
{
	struct amqp_connection_info ci;
	struct topo_policy p[TOPO_N_POLICIES];
	struct mgmt_target m = { .port = 15672 };
	char *copy = strdup(amqp_url), *pw = NULL, cmd[600];
	int rc = -1;

	if (!copy)
		return pb_err_set(err, EX_OSERR, "out of memory");
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
		pb_err_set(err, EX_CONFIG, "broker URL: not amqp[s]://USER@HOST[:PORT]/VHOST");
		goto out;
	}
	if (mgmt_url) {
		if (mgmt_parse_url(mgmt_url, &m, err))
			goto out;
	} else {
		snprintf(m.host, sizeof(m.host), "%s", ci.host);
	}
	if (pb_url_has_password(amqp_url))
		pw = strdup(ci.password);
	else if (password)
		pw = strdup(password);
	else if (password_file && !(pw = first_line(password_file, err)))
		goto out;
	m.user = ci.user;
	m.password = pw ? pw : ci.password;
	topo_policies(t, p);
	for (size_t i = 0; i < TOPO_N_POLICIES; i++) {
		if (mgmt_put_policy(&m, t->vhost, &p[i], err)) {
			/* the default guess (the AMQP host, port 15672) may
			 * be no API, or another broker's: a warning */
			if (mgmt_url)
				goto out;
			pb_log_warn("policy %s not set: %s; give --management-url, or run on a broker node:",
				    p[i].name, err->msg);
			for (size_t k = i; k < TOPO_N_POLICIES; k++) {
				mgmt_policy_command(t->vhost, &p[k], cmd, sizeof(cmd));
				pb_log_warn("  %s", cmd);
			}
			pb_err_clear(err);
			break;
		}
		printf("policy %s: max-age %s\n", p[i].name, p[i].max_age);
	}
	rc = 0;
out:
	if (pw) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
	}
	explicit_bzero(copy, strlen(copy));
	free(copy);
	return rc;
}

static int run_broker(const char *verb, const struct topology *t, const char *url,
		      const char *config_arg, const char *mgmt_url, struct pb_err *err)
{
	struct pb_session_opts o = { 0 };
	struct pb_config *cfg = NULL;
	struct pb_session *s = NULL;
	char *password = NULL;
	int rc = -1;

	if (url && check_url_vhost(url, t->vhost, err))
		goto out;
	/* the configuration gives the broker, or the password and TLS
	 * settings for a --url without password */
	if (!url || (!pb_url_has_password(url) && (config_arg || getenv("PROVBUS_CONFIG")))) {
		cfg = pb_config_load(pb_config_path(config_arg), err);
		if (!cfg)
			goto out;
		pb_session_opts_from_config(&o, cfg, "provbus-schema");
		o.n_urls = 1;	/* docs/protocol.md §2: the first broker URL */
	}
	if (url) {
		o.urls = &url;
		o.n_urls = 1;
	}
	if (url && !pb_url_has_password(url) && !cfg && pb_url_has_user(url)) {
		char shown[512];
		pb_session_redact_url(url, shown, sizeof(shown));
		if (!(password = ask_password(shown))) {
			pb_err_set(err, EX_CONFIG,
				   "--url %s has no password: give -c FILE whose broker.password_file holds it, or run on a terminal to be asked",
				   shown);
			goto out;
		}
		o.password = password;
	}
	o.vhost_override = t->vhost;
	o.connection_name = "provbus-schema";
	s = pb_session_new(&o);
	if (!s) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	if (pb_session_connect(s, err)) {
		size_t n = strlen(err->msg);
		if (strstr(err->msg, "530 NOT_ALLOWED") && strstr(err->msg, "not found"))
			snprintf(err->msg + n, sizeof(err->msg) - n,
				 ": create it first (rabbitmqctl add_vhost %s)", t->vhost);
		goto out;
	}
	if (!strcmp(verb, "apply")) {
		rc = schema_apply(s, t, stdout, err);
		if (!rc)
			rc = set_policies(t, o.urls[0], mgmt_url, password,
					  cfg ? cfg->password_file : NULL, err);
	} else {
		rc = schema_verify(s, t, stdout, err);
		if (rc > 0) {
			pb_err_set(err, 1, "%d object%s missing: run provbus-schema apply", rc,
				   rc > 1 ? "s" : "");
			rc = -1;
		}
	}
out:
	pb_session_free(s);
	pb_config_free(cfg);
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "url", required_argument, NULL, 'u' },
		{ "credentials", required_argument, NULL, 'C' },
		{ "no-users", no_argument, NULL, 'N' },
		{ "management-url", required_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_arg = NULL, *credentials = NULL, *mgmt_url = NULL, *verb, *file;
	int no_users = 0;
	char *url = NULL;
	struct pb_err err = PB_ERR_INIT;
	struct topology *t = NULL;
	int verbosity = 0, c, rc = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:hv", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': config_arg = optarg; break;
		case 'u':
			pb_session_wipe_free(url);
			if (!(url = pb_url_take_arg(optarg))) {
				fputs("provbus-schema: out of memory\n", stderr);
				return EX_OSERR;
			}
			break;
		case 'C': credentials = optarg; break;
		case 'N': no_users = 1; break;
		case 'M': mgmt_url = optarg; break;
		case 'v': verbosity++; break;
		case 'h': fputs(usage_text, stdout); goto out;
		case 'V': printf("provbus-schema %s\n", PB_VERSION); goto out;
		default: rc = pb_cli_option_error("provbus-schema", short_usage, longopts, argv, c); goto out;
		}
	}
	pb_log_init("provbus-schema", verbosity);
	if (optind >= argc) {
		rc = usage_error("a verb is needed: apply, verify or export");
		goto out;
	}
	verb = argv[optind];
	if (strcmp(verb, "apply") && strcmp(verb, "verify") && strcmp(verb, "export")) {
		rc = usage_error("unknown verb '%s': want apply, verify or export", verb);
		goto out;
	}
	if (argc - optind < 2) {
		rc = usage_error("%s needs a TOPOLOGY.json", verb);
		goto out;
	}
	if (argc - optind > 2) {
		rc = usage_error("%s: unexpected argument '%s'", verb, argv[optind + 2]);
		goto out;
	}
	if (!strcmp(verb, "export") && !credentials && !no_users) {
		rc = usage_error("export needs --credentials DIR (a password file per user, hashed into the export) or --no-users (no users at all)");
		goto out;
	}
	if (credentials && no_users) {
		rc = usage_error("--credentials and --no-users exclude each other");
		goto out;
	}
	if ((credentials || no_users) && strcmp(verb, "export")) {
		rc = usage_error("%s is an option of export", credentials ? "--credentials" : "--no-users");
		goto out;
	}
	file = argv[optind + 1];
	t = topo_load(file, &err);
	if (!t)
		goto out;
	if (!strcmp(verb, "export")) {
		if (url)
			pb_log_warn("--url is not used by export");
		schema_export(t, credentials, stdout, &err);
	} else {
		run_broker(verb, t, url, config_arg, mgmt_url, &err);
	}
out:
	if (err.code) {
		pb_log_err("%s", err.msg);
		rc = err.code;
	}
	topo_free(t);
	pb_session_wipe_free(url);
	return rc;
}
