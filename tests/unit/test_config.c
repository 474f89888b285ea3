/* test_config.c — the node configuration: good files with their defaults,
 * and one bad file per rule with its message and position.
 *
 * In the bad cases a backtick (`) marks where the error must point; it is
 * taken out of the text before the file is written. */
#include <arpa/inet.h>
#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "running.h"
#include "suite_main.h"

static char tmpdir[PATH_MAX];

static const char *data_path(const char *name)
{
	static char buf[PATH_MAX];
	const char *root = getenv("PB_ROOT");

	snprintf(buf, sizeof(buf), "%s/tests/data/config/%s", root && *root ? root : ".", name);
	return buf;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/pbcfg.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes text (marker removed) into a file name of tmpdir; sets *line and
 * *col to the marker's place (1:1 when there is none). Returns the path. */
static const char *write_marked(const char *name, const char *text, int *line, int *col)
{
	static char path[PATH_MAX + 64];
	FILE *f;
	int l = 1, c = 1;
	const char *p;

	*line = *col = 1;
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (p = text; *p; p++) {
		if (*p == '`') {
			*line = l;
			*col = c;
			continue;
		}
		fputc(*p, f);
		if (*p == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	fclose(f);
	return path;
}

/* --- good files --------------------------------------------------------- */

/* Loads a good file of tests/data/config; fails the test if it does not
 * load. */
static struct pb_config *load_good(const char *name)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_config *cfg = pb_config_load(data_path(name), &err);

	ck_assert_msg(cfg != NULL, "%s: %s", name, err.msg);
	return cfg;
}

/* The numbers and choices each good file ends up with: full.json is the
 * example of provbus.json(5), word for word (it spells the defaults out),
 * minimal.json leaves them to the loader, tuned.json sets every one. */
struct tunables {
	const char *file;
	int heartbeat_s;
	int64_t quiet_ms, max_wait_ms, throttle_runs, throttle_per_s, splay_ms;
	int64_t retry_max, retry_base_ms;
	const char *queue_type;
	int64_t history_window_s;
	int public_only;
	int verify_sender;
	int64_t presence_interval_s;
	const char *env_format;
	int64_t audit_retention_days;
};

static const struct tunables tunables[] = {
	{ "full.json", 30, 2000, 30000, 6, 600, 0, 5, 1000, "quorum", 86400, 0, 1, 300, "shell", 30 },
	{ "minimal.json", 30, 2000, 30000, 6, 600, 0, 5, 1000, "quorum", 86400, 0, 1, 300, "shell", 30 },
	{ "tuned.json", 0, 10, 100, 1, 1, 250, 0, 1, "classic", 0, 1, 0, 5, "systemd", 0 },
};

START_TEST(test_tunables)
{
	const struct tunables *w = &tunables[_i];
	struct pb_config *cfg = load_good(w->file);
	const struct pb_consumer_conf *cc = &cfg->consumer;

	ck_assert_int_eq(cfg->heartbeat_s, w->heartbeat_s);
	ck_assert_int_eq(cc->quiet_ms, w->quiet_ms);
	ck_assert_int_eq(cc->max_wait_ms, w->max_wait_ms);
	ck_assert_int_eq(cc->throttle_runs, w->throttle_runs);
	ck_assert_int_eq(cc->throttle_per_s, w->throttle_per_s);
	ck_assert_int_eq(cc->splay_ms, w->splay_ms);
	ck_assert_int_eq(cc->retry_max, w->retry_max);
	ck_assert_int_eq(cc->retry_base_ms, w->retry_base_ms);
	ck_assert_str_eq(cc->queue_type, w->queue_type);
	ck_assert_int_eq(cc->history_window_s, w->history_window_s);
	ck_assert_int_eq(cc->public_only, w->public_only);
	ck_assert_int_eq(cc->verify_sender, w->verify_sender);
	ck_assert_int_eq(cc->presence_interval_s, w->presence_interval_s);
	ck_assert_str_eq(cc->env_format, w->env_format);
	ck_assert_int_eq(cc->audit_retention_days, w->audit_retention_days);
	pb_config_free(cfg);
}
END_TEST

START_TEST(test_full)
{
	struct pb_config *cfg = load_good("full.json");
	const struct pb_consumer_conf *cc = &cfg->consumer;

	ck_assert_str_eq(cfg->node, "www-01");
	ck_assert_str_eq(cfg->federation, "seatgeek");
	ck_assert_str_eq(cfg->region, "us-east-1");
	ck_assert_str_eq(cfg->host, "10.0.1.5");
	ck_assert_uint_eq(cfg->n_broker_urls, 2);
	ck_assert_str_eq(cfg->broker_urls[1], "amqps://www-01@rmq-2:5671/provbus");
	ck_assert_ptr_null(cfg->broker_urls[2]);
	ck_assert_str_eq(cfg->password_file, "/etc/provbus/password");
	ck_assert_int_eq(cfg->has_tls, 1);
	ck_assert_str_eq(cfg->tls.ca, "/etc/provbus/ca.pem");
	ck_assert_str_eq(cfg->tls.cert, "/etc/provbus/node.pem");
	ck_assert_str_eq(cfg->tls.key, "/etc/provbus/node.key");
	ck_assert_int_eq(cfg->tls.verify_hostname, 1);
	ck_assert_str_eq(cfg->services_dir, "/etc/provbus/services.d");
	ck_assert_str_eq(cfg->state_dir, "/var/lib/provbus");
	ck_assert_str_eq(cc->env_file, "/etc/services.d/app.conf");
	ck_assert_uint_eq(cc->n_provision, 3);
	ck_assert_str_eq(cc->provision[0], "/usr/bin/chef-solo");
	ck_assert_str_eq(cc->provision[2], "/etc/chef/node.json");
	ck_assert_ptr_null(cc->provision[3]);
	ck_assert_str_eq(cc->lock_file, "/run/provbus/provision.lock");
	ck_assert_uint_eq(cc->n_regions, 1);
	ck_assert_str_eq(cc->regions[0], "us-east-1");
	ck_assert_uint_eq(cc->n_notify, 1);
	ck_assert_str_eq(cc->notify[0], "/usr/local/bin/post-to-chat");
	ck_assert_ptr_null(cc->notify[1]);
	ck_assert_uint_eq(cc->n_statics, 1);
	ck_assert_str_eq(pb_config_static(cfg, "PRIMARY_DATABASE_URL"), "mysql://db-1:3306/app");
	ck_assert_ptr_null(pb_config_static(cfg, "OTHER"));
	ck_assert_int_eq(pb_config_accepts_region(cfg, "us-east-1"), 1);
	ck_assert_int_eq(pb_config_accepts_region(cfg, "eu-west-1"), 0);
	ck_assert_str_eq(cfg->path, data_path("full.json"));
	pb_config_free(cfg);
}
END_TEST

START_TEST(test_minimal_defaults)
{
	struct pb_config *cfg = load_good("minimal.json");
	const struct pb_consumer_conf *cc = &cfg->consumer;
	struct in_addr a;

	/* host: the first non-loopback IPv4 address, else 127.0.0.1 */
	ck_assert_ptr_nonnull(cfg->host);
	ck_assert_msg(inet_pton(AF_INET, cfg->host, &a) == 1, "host %s", cfg->host);
	ck_assert_uint_eq(cfg->n_broker_urls, 1);
	ck_assert_ptr_null(cfg->password_file);
	ck_assert_int_eq(cfg->has_tls, 0);
	ck_assert_int_eq(cfg->tls.verify_hostname, 1);
	ck_assert_str_eq(cfg->services_dir, "/etc/provbus/services.d");
	ck_assert_str_eq(cfg->state_dir, "/var/lib/provbus");
	ck_assert_str_eq(cc->env_file, "/var/lib/provbus/provbus.env");
	ck_assert_str_eq(cc->lock_file, "/var/lib/provbus/provision.lock");
	ck_assert_ptr_null(cc->provision);
	ck_assert_uint_eq(cc->n_provision, 0);
	ck_assert_ptr_null(cc->notify);
	ck_assert_uint_eq(cc->n_regions, 1);
	ck_assert_str_eq(cc->regions[0], "eu-west-1");
	ck_assert_ptr_null(cc->regions[1]);
	ck_assert_uint_eq(cc->n_statics, 0);
	ck_assert_ptr_null(pb_config_static(cfg, "X"));
	ck_assert_int_eq(pb_config_accepts_region(cfg, "eu-west-1"), 1);
	ck_assert_int_eq(pb_config_accepts_region(cfg, "us-east-1"), 0);
	pb_config_free(cfg);
}
END_TEST

START_TEST(test_tuned)
{
	struct pb_config *cfg = load_good("tuned.json");
	const struct pb_consumer_conf *cc = &cfg->consumer;

	ck_assert_str_eq(cfg->host, "lb-1.internal");
	ck_assert_ptr_null(cfg->password_file);	/* null is "not set" */
	ck_assert_int_eq(cfg->has_tls, 1);
	ck_assert_str_eq(cfg->tls.ca, "/etc/ca.pem");
	ck_assert_ptr_null(cfg->tls.cert);
	ck_assert_int_eq(cfg->tls.verify_hostname, 0);
	ck_assert_str_eq(cc->env_file, "/srv/provbus/provbus.env");
	ck_assert_str_eq(cc->lock_file, "/srv/provbus/provision.lock");
	ck_assert_int_eq(pb_config_accepts_region(cfg, "anywhere-1"), 1);
	/* statics sorted by name (strcmp) */
	ck_assert_uint_eq(cc->n_statics, 3);
	ck_assert_str_eq(cc->statics[0].name, "ALPHA");
	ck_assert_str_eq(cc->statics[1].name, "ZED");
	ck_assert_str_eq(cc->statics[2].name, "_MID");
	ck_assert_str_eq(pb_config_static(cfg, "ALPHA"), "a=1 b='2'");
	ck_assert_str_eq(pb_config_static(cfg, "ZED"), "");
	ck_assert_str_eq(pb_config_static(cfg, "_MID"), "m");
	ck_assert_ptr_null(pb_config_static(cfg, "NOPE"));
	pb_config_free(cfg);
}
END_TEST

START_TEST(test_path)
{
	unsetenv("PROVBUS_CONFIG");
	ck_assert_str_eq(pb_config_path(NULL), PB_CONFIG_DEFAULT);
	ck_assert_str_eq(pb_config_path(""), PB_CONFIG_DEFAULT);
	setenv("PROVBUS_CONFIG", "/tmp/x.json", 1);
	ck_assert_str_eq(pb_config_path(NULL), "/tmp/x.json");
	ck_assert_str_eq(pb_config_path("/a.json"), "/a.json");
	setenv("PROVBUS_CONFIG", "", 1);
	ck_assert_str_eq(pb_config_path(NULL), PB_CONFIG_DEFAULT);
	unsetenv("PROVBUS_CONFIG");
}
END_TEST

/* pb_config_state_dir: the control verbs' lenient look-up of state_dir. */
static const struct {
	const char *text;	/* NULL: no file */
	const char *dir;	/* NULL: an error */
	int broken;		/* 1: *why is set */
} state_dirs[] = {
	{ "{\"node\": \"n\", \"federation\": \"f\", \"region\": \"r\", \"broker\": {\"urls\":"
	  " [\"amqp://u@h/v\"]}, \"state_dir\": \"/srv/pb\"}", "/srv/pb", 0 },
	/* a typo elsewhere: valid JSON, an unknown field */
	{ "{\"node\": \"n\", \"state_dir\": \"/srv/pb\", \"consumer\": {\"quiet_msx\": 1}}",
	  "/srv/pb", 1 },
	/* not even JSON: the member is found in the text */
	{ "{\"node\": \"n\",\n  \"state_dir\" : \"/srv/pb2\",\n  \"consumer\": {", "/srv/pb2", 1 },
	/* no state_dir at all: the default */
	{ "{\"node\": ", PB_STATE_DIR_DEFAULT, 1 },
	{ "{\"node\": \"n\", \"consumer\": 5}", PB_STATE_DIR_DEFAULT, 1 },
	/* a state_dir that is there but not a string: an error */
	{ "{\"state_dir\": 5}", NULL, 1 },
	{ NULL, NULL, 0 },
};

/* pb_running_config_arg: a daemon's configuration file from its argv */
static const struct {
	const char *args;	/* '|' separates the arguments */
	const char *conf;	/* NULL: none */
	int is_run;
} daemon_args[] = {
	{ "provbus-consumer|-c|/etc/p.json|run", "/etc/p.json", 1 },
	{ "/usr/bin/provbus-consumer|--config|p.json|-v|run", "p.json", 1 },
	{ "provbus-consumer|--config=/x/p.json|run", "/x/p.json", 1 },
	{ "provbus-consumer|-c/x/p.json|-vv|run", "/x/p.json", 1 },
	{ "provbus-consumer|run", NULL, 1 },
	{ "provbus-consumer|-c|/etc/p.json|status", "/etc/p.json", 0 },
	/* after --, nothing is an option */
	{ "provbus-consumer|run|--|-c|/y.json", NULL, 1 },
	/* argv[0] is never an argument */
	{ "run|-c|a.json|pause", "a.json", 0 },
	/* a -c at the end with no value */
	{ "provbus-consumer|run|-c", NULL, 1 },
};

START_TEST(test_running_config_arg)
{
	char buf[256];
	size_t n = strlen(daemon_args[_i].args);
	const char *conf;
	int is_run = -1;

	memcpy(buf, daemon_args[_i].args, n + 1);
	for (size_t k = 0; k < n; k++)
		if (buf[k] == '|')
			buf[k] = '\0';
	conf = pb_running_config_arg(buf, n + 1, &is_run);
	if (daemon_args[_i].conf)
		ck_assert_str_eq(conf ? conf : "(null)", daemon_args[_i].conf);
	else
		ck_assert_ptr_null(conf);
	ck_assert_int_eq(is_run, daemon_args[_i].is_run);
}
END_TEST

/* no daemon runs this file: NULL (the look-up of /proc finds nothing) */
START_TEST(test_running_state_dir_none)
{
	char path[PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/nobody.json", tmpdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("{broken", f);
	fclose(f);
	ck_assert_ptr_null(pb_running_state_dir(path, path));
	ck_assert_ptr_null(pb_running_state_dir("/nonexistent/provbus.json", "/nonexistent/x"));
}
END_TEST

START_TEST(test_state_dir_lenient)
{
	struct pb_err err = PB_ERR_INIT;
	char path[PATH_MAX + 32], *why = NULL, *dir;
	FILE *f;

	snprintf(path, sizeof(path), "%s/sd.json", tmpdir);
	if (state_dirs[_i].text) {
		f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fputs(state_dirs[_i].text, f);
		fclose(f);
	}
	dir = pb_config_state_dir(path, &why, &err);
	if (!state_dirs[_i].dir) {
		ck_assert_ptr_null(dir);
		ck_assert_int_eq(err.code, state_dirs[_i].text ? EX_CONFIG : EX_NOINPUT);
		ck_assert_ptr_null(why);
		return;
	}
	ck_assert_msg(dir != NULL, "%s", err.msg);
	ck_assert_str_eq(dir, state_dirs[_i].dir);
	ck_assert_int_eq(why != NULL, state_dirs[_i].broken);
	free(dir);
	free(why);
}
END_TEST

START_TEST(test_missing_file)
{
	struct pb_err err = PB_ERR_INIT;
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/nope.json", tmpdir);
	ck_assert_ptr_null(pb_config_load(path, &err));
	ck_assert_int_eq(err.code, EX_NOINPUT);
	ck_assert_msg(strncmp(err.msg, path, strlen(path)) == 0, "%s", err.msg);
	ck_assert_msg(strstr(err.msg, "No such file"), "%s", err.msg);
}
END_TEST

START_TEST(test_directory_is_not_a_file)
{
	struct pb_err err = PB_ERR_INIT;

	ck_assert_ptr_null(pb_config_load(tmpdir, &err));
	ck_assert_int_eq(err.code, EX_NOINPUT);
	ck_assert_msg(strstr(err.msg, tmpdir), "%s", err.msg);
}
END_TEST

/* a good config written here, to check the things files cannot show */
START_TEST(test_null_is_unset_and_real_ok)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_config *cfg;
	const char *path;
	int l, c;

	path = write_marked("c.json",
			    "{\"node\": \"n1\", \"federation\": \"f1\", \"region\": \"r1\", \"host\": null,\n"
			    " \"broker\": {\"urls\": [\"amqp://u:pw@h:5672/v\"], \"tls\": null},\n"
			    " \"consumer\": {\"quiet_ms\": 0, \"regions\": [\"r1\", \"r2\", \"*\"], \"static\": {}}}",
			    &l, &c);
	cfg = pb_config_load(path, &err);
	ck_assert_msg(cfg != NULL, "%s", err.msg);
	ck_assert_ptr_nonnull(cfg->host);
	ck_assert_int_eq(cfg->has_tls, 0);
	ck_assert_int_eq(cfg->consumer.quiet_ms, 0);
	ck_assert_uint_eq(cfg->consumer.n_regions, 3);
	ck_assert_int_eq(pb_config_accepts_region(cfg, "zz"), 1);
	ck_assert_uint_eq(cfg->consumer.n_statics, 0);
	pb_config_free(cfg);
}
END_TEST

/* --- bad files ---------------------------------------------------------- */

#define HEAD "{\"node\": \"n1\", \"federation\": \"f1\", \"region\": \"r1\",\n"
#define BROKER " \"broker\": {\"urls\": [\"amqp://u@h/v\"]},\n"
#define BROKER_LAST " \"broker\": {\"urls\": [\"amqp://u@h/v\"]}}"
#define BASE HEAD BROKER

struct bad_case {
	const char *name;
	const char *text;	/* ` marks the expected position */
	const char *fragment;
	int code;		/* 0: EX_CONFIG */
};

static const struct bad_case bad[] = {
	/* unknown fields, at every level */
	{ "unknown consumer field", BASE " \"consumer\": {`\"quiet_msec\": 5}}",
	  "unknown field 'quiet_msec' in consumer (known: env_file, provision, quiet_ms, max_wait_ms, throttle, splay_ms, retry, lock_file, regions, queue_type, history_window_s, public_only, notify, static, verify_sender, presence_interval_s, env_format, audit_retention_days)" },
	{ "unknown top field", BASE " `\"nodes\": [], \"consumer\": {}}",
	  "unknown field 'nodes' (known: node, federation, region, host, broker, services_dir, state_dir, consumer)" },
	{ "unknown broker field", HEAD " \"broker\": {\"urls\": [\"amqp://u@h/v\"], `\"heartbeat\": 5}}",
	  "unknown field 'heartbeat' in broker (known: urls, password_file, tls, heartbeat_s)" },
	{ "unknown tls field", HEAD " \"broker\": {\"urls\": [\"amqp://u@h/v\"],\n  \"tls\": {\"ca\": \"x\", `\"cafile\": \"y\"}}}",
	  "unknown field 'cafile' in broker.tls (known: ca, cert, key, verify_hostname)" },
	{ "unknown throttle field", BASE " \"consumer\": {\"throttle\": {\"runs\": 1, `\"burst\": 2}}}",
	  "unknown field 'burst' in consumer.throttle (known: runs, per_s)" },
	{ "unknown retry field", BASE " \"consumer\": {\"retry\": {`\"tries\": 2}}}",
	  "unknown field 'tries' in consumer.retry (known: max, base_ms)" },
	{ "unknown null field", BASE " `\"comment\": null}", "unknown field 'comment'" },

	/* required fields and names */
	{ "missing node", "`{\"federation\": \"f1\", \"region\": \"r1\",\n" BROKER " \"state_dir\": \"/s\"}",
	  "missing required field 'node'" },
	{ "missing region", "`{\"node\": \"n1\", \"federation\": \"f1\",\n" BROKER " \"state_dir\": \"/s\"}",
	  "missing required field 'region'" },
	{ "node not a string", "{\"node\": `5, \"federation\": \"f1\", \"region\": \"r1\",\n" BROKER_LAST,
	  "field 'node': want a string, got an integer" },
	{ "bad node name", "{\"node\": `\"WWW_01\", \"federation\": \"f1\", \"region\": \"r1\",\n" BROKER_LAST,
	  "field 'node': 'WWW_01' is not a valid name (want [a-z0-9][a-z0-9-]{0,62})" },
	{ "node name too long",
	  "{\"node\": `\"a123456789012345678901234567890123456789012345678901234567890123\",\n"
	  " \"federation\": \"f1\", \"region\": \"r1\",\n" BROKER_LAST,
	  "is not a valid name" },
	{ "bad federation", "{\"node\": \"n1\", \"federation\": `\"-f\", \"region\": \"r1\",\n" BROKER_LAST,
	  "field 'federation': '-f' is not a valid name" },
	{ "empty region", "{\"node\": \"n1\", \"federation\": \"f1\", \"region\": `\"\",\n" BROKER_LAST,
	  "field 'region': want a non-empty string" },
	{ "empty host", BASE " \"host\": `\"\"}", "field 'host': want a non-empty string" },
	{ "host with a space", BASE " \"host\": `\"10.0.0.1 x\"}", "field 'host': '10.0.0.1 x' holds a space" },

	/* broker */
	{ "missing broker", "`{\"node\": \"n1\", \"federation\": \"f1\", \"region\": \"r1\"}",
	  "missing required field 'broker'" },
	{ "broker not an object", HEAD " \"broker\": `[\"amqp://u@h/v\"]}",
	  "field 'broker': want an object, got an array" },
	{ "missing urls", HEAD " \"broker\": `{\"heartbeat_s\": 5}}", "missing required field 'broker.urls'" },
	{ "empty urls", HEAD " \"broker\": {\"urls\": `[]}}", "field 'broker.urls': want a non-empty array" },
	{ "urls not an array", HEAD " \"broker\": {\"urls\": `\"amqp://u@h/v\"}}",
	  "field 'broker.urls': want an array of strings, got a string" },
	{ "url not a string", HEAD " \"broker\": {\"urls\": [`{}]}}",
	  "field 'broker.urls[0]': want a string, got an object" },
	{ "bad url scheme", HEAD " \"broker\": {\"urls\": [\"amqp://u@h/v\",\n   `\"http://u:secret@h/v\"]}}",
	  "field 'broker.urls[1]': 'http://u@h/v' is not an amqp:// or amqps:// URL" },
	{ "unparseable url", HEAD " \"broker\": {\"urls\": [`\"amqp://u:secret@h:port/v\"]}}",
	  "field 'broker.urls[0]': cannot parse 'amqp://u@h:port/v'" },
	{ "password_file not a string", HEAD " \"broker\": {\"urls\": [\"amqp://h\"], \"password_file\": `true}}",
	  "field 'broker.password_file': want a string, got a boolean" },
	{ "heartbeat negative", HEAD " \"broker\": {\"urls\": [\"amqp://h\"], \"heartbeat_s\": `-1}}",
	  "field 'broker.heartbeat_s': want an integer number of seconds from 0 to 65535, got -1" },
	{ "heartbeat real", HEAD " \"broker\": {\"urls\": [\"amqp://h\"], \"heartbeat_s\": `1.5}}",
	  "field 'broker.heartbeat_s': want an integer number of seconds, got a real number" },
	{ "tls not an object", HEAD " \"broker\": {\"urls\": [\"amqp://h\"], \"tls\": `true}}",
	  "field 'broker.tls': want an object, got a boolean" },
	{ "tls cert without key", HEAD " \"broker\": {\"urls\": [\"amqp://h\"], \"tls\": `{\"cert\": \"c.pem\"}}}",
	  "field 'broker.tls': cert and key go together" },
	{ "tls verify not a boolean", HEAD " \"broker\": {\"urls\": [\"amqp://h\"], \"tls\": {\"verify_hostname\": `1}}}",
	  "field 'broker.tls.verify_hostname': want true or false, got an integer" },

	/* paths */
	{ "state_dir not a string", BASE " \"state_dir\": `[\"/x\"]}", "field 'state_dir': want a string, got an array" },
	{ "services_dir empty", BASE " \"services_dir\": `\"\"}", "field 'services_dir': want a non-empty string" },

	/* consumer */
	{ "consumer not an object", BASE " \"consumer\": `[]}", "field 'consumer': want an object, got an array" },
	{ "float duration", BASE " \"consumer\": {\"quiet_ms\": `2.5}}",
	  "field 'consumer.quiet_ms': want an integer number of milliseconds, got a real number (2.5)" },
	{ "float duration with .0", BASE " \"consumer\": {\"quiet_ms\": `2000.0}}",
	  "field 'consumer.quiet_ms': want an integer number of milliseconds, got a real number" },
	{ "string duration", BASE " \"consumer\": {\n  \"max_wait_ms\": `\"30000\"}}",
	  "field 'consumer.max_wait_ms': want an integer number of milliseconds, got a string" },
	{ "negative duration", BASE " \"consumer\": {\"splay_ms\": `-5}}",
	  "field 'consumer.splay_ms': want an integer number of milliseconds from 0 to" },
	{ "presence interval zero", BASE " \"consumer\": {\"presence_interval_s\": `0}}",
	  "field 'consumer.presence_interval_s': want an integer number of seconds from 1 to" },
	{ "float seconds", BASE " \"consumer\": {\"history_window_s\": `1e3}}",
	  "field 'consumer.history_window_s': want an integer number of seconds, got a real number" },
	{ "boolean duration", BASE " \"consumer\": {\"max_wait_ms\": `false}}",
	  "field 'consumer.max_wait_ms': want an integer number of milliseconds, got a boolean" },
	{ "throttle runs zero", BASE " \"consumer\": {\"throttle\": {\"runs\": `0}}}",
	  "field 'consumer.throttle.runs': want an integer from 1 to" },
	{ "throttle per_s zero", BASE " \"consumer\": {\"throttle\": {\"per_s\": `0}}}",
	  "field 'consumer.throttle.per_s': want an integer number of seconds from 1 to" },
	{ "throttle per_s real", BASE " \"consumer\": {\"throttle\": {\"per_s\": `0.5}}}",
	  "field 'consumer.throttle.per_s': want an integer number of seconds, got a real number" },
	{ "throttle not an object", BASE " \"consumer\": {\"throttle\": `6}}",
	  "field 'consumer.throttle': want an object, got an integer" },
	{ "retry max negative", BASE " \"consumer\": {\"retry\": {\"max\": `-1}}}",
	  "field 'consumer.retry.max': want an integer from 0 to" },
	{ "retry base zero", BASE " \"consumer\": {\"retry\": {\"base_ms\": `0}}}",
	  "field 'consumer.retry.base_ms': want an integer number of milliseconds from 1 to" },
	{ "bad queue_type", BASE " \"consumer\": {\"queue_type\": `\"lazy\"}}",
	  "field 'consumer.queue_type': want \"quorum\" or \"classic\", got 'lazy'" },
	{ "bad env_format", BASE " \"consumer\": {\"env_format\": `\"dotenv\"}}",
	  "field 'consumer.env_format': want \"shell\" or \"systemd\", got 'dotenv'" },
	{ "negative audit_retention_days", BASE " \"consumer\": {\"audit_retention_days\": `-1}}",
	  "field 'consumer.audit_retention_days': want an integer number of days from 0 to" },
	{ "bad region", BASE " \"consumer\": {\"regions\": [\"r1\", `\"US\"]}}",
	  "field 'consumer.regions[1]': 'US' is not a region name" },
	{ "empty regions", BASE " \"consumer\": {\"regions\": `[]}}",
	  "field 'consumer.regions': want a non-empty array" },
	{ "empty provision", BASE " \"consumer\": {\"provision\": `[]}}",
	  "field 'consumer.provision': want a non-empty array" },
	{ "empty provision command", BASE " \"consumer\": {\"provision\": [`\"\", \"-j\"]}}",
	  "field 'consumer.provision[0]': the command must not be empty" },
	{ "provision not strings", BASE " \"consumer\": {\"provision\": [\"/bin/x\", `1]}}",
	  "field 'consumer.provision[1]': want a string, got an integer" },
	{ "provision a string", BASE " \"consumer\": {\"provision\": `\"/usr/bin/chef-solo -j x\"}}",
	  "field 'consumer.provision': want an array of strings, got a string" },
	{ "notify a string", BASE " \"consumer\": {\"notify\": `\"post\"}}",
	  "field 'consumer.notify': want an array of strings, got a string" },
	{ "public_only a string", BASE " \"consumer\": {\"public_only\": `\"yes\"}}",
	  "field 'consumer.public_only': want true or false, got a string" },
	{ "verify_sender a number", BASE " \"consumer\": {\"verify_sender\": `0}}",
	  "field 'consumer.verify_sender': want true or false, got an integer" },
	{ "static not an object", BASE " \"consumer\": {\"static\": `[]}}",
	  "field 'consumer.static': want an object, got an array" },
	{ "bad static key", BASE " \"consumer\": {\"static\": {\"OK\": \"1\",\n   `\"primary_db\": \"x\"}}}",
	  "field 'consumer.static.primary_db': 'primary_db' is not a valid key name (want ^[A-Z_][A-Z0-9_]{0,127}$)" },
	{ "static value not a string", BASE " \"consumer\": {\"static\": {\"PORT\": `5432}}}",
	  "field 'consumer.static.PORT': want a string, got an integer" },
	{ "static value with newline", BASE " \"consumer\": {\"static\": {\"K\": `\"a\\nb\"}}}",
	  "field 'consumer.static.K': control byte 0x0a at offset 1" },
	{ "static value with ESC", BASE " \"consumer\": {\"static\": {\"K\": `\"a\\u001b]0;x\\u0007\"}}}",
	  "field 'consumer.static.K': control byte 0x1b at offset 1" },
	{ "env_file not a string", BASE " \"consumer\": {\"env_file\": `1}}",
	  "field 'consumer.env_file': want a string, got an integer" },

	/* syntax: jansson's own position */
	{ "syntax error", "{\"node\": \"n1\",\n \"federation\" \"f`\"}", "':' expected near '\"f\"'" },
	{ "duplicate key", "{\"node\": \"a\",\n \"node`\": \"b\"}", "duplicate object key" },
	{ "trailing garbage", "{}\n`x", "end of file expected" },
	{ "empty file", "`", "'[' or '{' expected near end of file" },
	{ "not an object", "`[1, 2]", "the configuration must be a JSON object" },
};

START_TEST(test_bad)
{
	const struct bad_case *b = &bad[_i];
	struct pb_err err = PB_ERR_INIT;
	struct pb_config *cfg;
	char prefix[PATH_MAX + 64];
	const char *path;
	int line, col;

	path = write_marked("bad.json", b->text, &line, &col);
	cfg = pb_config_load(path, &err);
	ck_assert_msg(cfg == NULL, "%s: loaded", b->name);
	ck_assert_msg(err.code == (b->code ? b->code : EX_CONFIG), "%s: code %d: %s", b->name,
		      err.code, err.msg);
	snprintf(prefix, sizeof(prefix), "%s:%d:%d: ", path, line, col);
	ck_assert_msg(strncmp(err.msg, prefix, strlen(prefix)) == 0, "%s: want prefix '%s' in '%s'",
		      b->name, prefix, err.msg);
	ck_assert_msg(strstr(err.msg, b->fragment) != NULL, "%s: want '%s' in '%s'", b->name,
		      b->fragment, err.msg);
	ck_assert_msg(strstr(err.msg, "secret") == NULL, "%s: password shown: %s", b->name,
		      err.msg);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_tunables, 0, (int)(sizeof(tunables) / sizeof(tunables[0])));
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_minimal_defaults);
	tcase_add_test(tc, test_tuned);
	tcase_add_test(tc, test_path);
	tcase_add_test(tc, test_missing_file);
	tcase_add_loop_test(tc, test_state_dir_lenient, 0,
			    (int)(sizeof(state_dirs) / sizeof(state_dirs[0])));
	tcase_add_test(tc, test_directory_is_not_a_file);
	tcase_add_test(tc, test_null_is_unset_and_real_ok);
	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_loop_test(tc, test_running_config_arg, 0,
			    (int)(sizeof(daemon_args) / sizeof(daemon_args[0])));
	tcase_add_test(tc, test_running_state_dir_none);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(config_suite());
}
