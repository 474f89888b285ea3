/* test_manifest.c — service manifests: good ones, one bad one per rule
 * (message and position), template expansion, directories and the keys
 * and env vars a set requires.
 *
 * In the bad cases a backtick (`) marks where the error must point; it is
 * taken out of the text before the file is written. */
#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "manifest.h"
#include "suite_main.h"

static char tmpdir[PATH_MAX];

static const char *data_path(const char *name)
{
	static char buf[PATH_MAX];
	const char *root = getenv("PB_ROOT");

	snprintf(buf, sizeof(buf), "%s/tests/data/manifest/%s", root && *root ? root : ".", name);
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
	snprintf(tmpdir, sizeof(tmpdir), "%s/pbman.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
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
	int l = 1, c = 1;
	const char *p;
	FILE *f;

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

static const char *write_file(const char *name, const char *text)
{
	int l, c;

	return write_marked(name, text, &l, &c);
}

static struct pb_manifest *load_text(const char *text, struct pb_err *err)
{
	return pb_manifest_load(write_file("m.json", text), "node-fed", err);
}

/* --- good manifests ------------------------------------------------------ */

START_TEST(test_spec_example)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_manifest *m = pb_manifest_load(data_path("app-www.json"), "other", &err);

	ck_assert_msg(m != NULL, "%s", err.msg);
	ck_assert_str_eq(m->path, data_path("app-www.json"));
	ck_assert_str_eq(m->id, "app-www");
	ck_assert_str_eq(m->federation, "seatgeek");
	ck_assert_uint_eq(m->n_environment, 2);
	ck_assert_str_eq(m->environment[0].name, "ENV");
	ck_assert_str_eq(m->environment[0].value, "production");
	ck_assert_str_eq(m->environment[1].name, "PORT");
	ck_assert_str_eq(m->environment[1].value, "8080");
	/* requires sorted by env */
	ck_assert_uint_eq(m->n_requires, 2);
	ck_assert_str_eq(m->requires[0].env, "API_URL");
	ck_assert_str_eq(m->requires[0].key, "READONLY_API_URL");
	ck_assert_ptr_null(m->requires[0].literal);
	ck_assert_str_eq(m->requires[1].env, "DATABASE_URL");
	ck_assert_str_eq(m->requires[1].key, "PRIMARY_DATABASE_URL");
	ck_assert_uint_eq(m->n_provides, 1);
	ck_assert_str_eq(m->provides[0].name, "WWW_URL");
	ck_assert_str_eq(m->provides[0].value, "http://{HOST}:{PORT}/some-mount");
	ck_assert_int_eq(m->local_port, 8080);
	ck_assert_int_eq(m->public, 1);
	pb_manifest_free(m);
}
END_TEST

START_TEST(test_chef_extras)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_manifest *m = pb_manifest_load(data_path("chef-extras.json"), "fed-a", &err);

	ck_assert_msg(m != NULL, "%s", err.msg);
	ck_assert_str_eq(m->id, "api");
	ck_assert_str_eq(m->federation, "fed-a");	/* the node's */
	ck_assert_int_eq(m->public, 0);
	ck_assert_int_eq(m->local_port, 1100);
	/* values as text, sorted by name */
	ck_assert_uint_eq(m->n_environment, 4);
	ck_assert_str_eq(m->environment[0].name, "DEBUG");
	ck_assert_str_eq(m->environment[0].value, "false");
	ck_assert_str_eq(m->environment[1].name, "NAME");
	ck_assert_str_eq(m->environment[1].value, "api");
	ck_assert_str_eq(m->environment[2].name, "RATIO");
	ck_assert_str_eq(m->environment[2].value, "1.5");
	ck_assert_str_eq(m->environment[3].name, "WORKERS");
	ck_assert_str_eq(m->environment[3].value, "4");
	/* literals */
	ck_assert_uint_eq(m->n_requires, 2);
	ck_assert_str_eq(m->requires[0].env, "LIMIT");
	ck_assert_ptr_null(m->requires[0].key);
	ck_assert_str_eq(m->requires[0].literal, "10");
	ck_assert_str_eq(m->requires[1].env, "MODE");
	ck_assert_str_eq(m->requires[1].literal, "readonly");
	ck_assert_uint_eq(m->n_provides, 2);
	ck_assert_str_eq(m->provides[0].name, "API_NODE");
	ck_assert_str_eq(m->provides[1].name, "API_URL");
	pb_manifest_free(m);
}
END_TEST

START_TEST(test_minimal)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_manifest *m = pb_manifest_load(data_path("minimal.json"), NULL, &err);

	ck_assert_msg(m != NULL, "%s", err.msg);
	ck_assert_str_eq(m->id, "worker");
	ck_assert_ptr_null(m->federation);	/* no default given */
	ck_assert_uint_eq(m->n_environment, 0);
	ck_assert_uint_eq(m->n_requires, 0);
	ck_assert_uint_eq(m->n_provides, 0);
	ck_assert_int_eq(m->local_port, -1);
	ck_assert_int_eq(m->public, 0);
	pb_manifest_free(m);
}
END_TEST

START_TEST(test_nulls_and_empties)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_manifest *m;

	m = load_text("{\"id\": \"a.b_c-1\", \"federation\": null, \"local_port\": null,\n"
		      " \"environment\": {}, \"requires\": {\"EMPTY\": \"\"}, \"provides\": null,\n"
		      " \"public\": false}",
		      &err);
	ck_assert_msg(m != NULL, "%s", err.msg);
	ck_assert_str_eq(m->id, "a.b_c-1");
	ck_assert_str_eq(m->federation, "node-fed");
	ck_assert_int_eq(m->local_port, -1);
	ck_assert_uint_eq(m->n_requires, 1);
	ck_assert_str_eq(m->requires[0].literal, "");
	pb_manifest_free(m);
}
END_TEST

START_TEST(test_missing_file)
{
	struct pb_err err = PB_ERR_INIT;
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/none.json", tmpdir);
	ck_assert_ptr_null(pb_manifest_load(path, "f", &err));
	ck_assert_int_eq(err.code, EX_NOINPUT);
	ck_assert_msg(strncmp(err.msg, path, strlen(path)) == 0, "%s", err.msg);
}
END_TEST

/* --- bad manifests ------------------------------------------------------- */

struct bad_case {
	const char *name;
	const char *text;	/* ` marks the expected position */
	const char *fragment;
};

static const struct bad_case bad[] = {
	{ "missing id", "`{\"run_list\": [],\n \"provides\": {}}", "missing required field 'id'" },
	{ "id not a string", "{\"id\": `7}", "field 'id': want a string, got an integer" },
	{ "bad id", "{\"id\": `\"app www\"}", "field 'id': 'app www' is not a valid service id" },
	{ "id with slash", "{\"id\": `\"../x\"}", "is not a valid service id" },
	{ "bad federation", "{\"id\": \"a\",\n \"federation\": `\"SeatGeek\"}",
	  "field 'federation': 'SeatGeek' is not a valid name" },
	{ "federation not a string", "{\"id\": \"a\", \"federation\": `[]}",
	  "field 'federation': want a string, got an array" },
	{ "environment not an object", "{\"id\": \"a\", \"environment\": `[\"A=1\"]}",
	  "field 'environment': want an object, got an array" },
	{ "environment bad name", "{\"id\": \"a\", \"environment\": {\"OK\": 1,\n  `\"lower\": \"x\"}}",
	  "field 'environment': 'lower' is not a valid name (want ^[A-Z_][A-Z0-9_]{0,127}$)" },
	{ "environment array value", "{\"id\": \"a\", \"environment\": {\"A\": `[1]}}",
	  "field 'environment.A': want a string, a number or a boolean, got an array" },
	{ "environment null value", "{\"id\": \"a\", \"environment\": {\"A\": `null}}",
	  "field 'environment.A': want a string, a number or a boolean, got null" },
	{ "requires not an object", "{\"id\": \"a\", \"requires\": `\"{A}\"}",
	  "field 'requires': want an object, got a string" },
	{ "requires bad env name", "{\"id\": \"a\", \"requires\": {`\"db-url\": \"{A}\"}}",
	  "field 'requires': 'db-url' is not a valid name" },
	{ "requires text and reference", "{\"id\": \"a\",\n \"requires\": {\"X\": `\"x{A}y\"}}",
	  "field 'requires.X': 'x{A}y' is not one {KEY} reference: requires takes exactly one {KEY} and nothing else, or a literal value without braces" },
	{ "requires two references", "{\"id\": \"a\", \"requires\": {\"X\": `\"{A}{B}\"}}",
	  "'{A}{B}' is not one {KEY} reference" },
	{ "requires reference then text", "{\"id\": \"a\", \"requires\": {\"X\": `\"{A}/db\"}}",
	  "'{A}/db' is not one {KEY} reference" },
	{ "requires unterminated", "{\"id\": \"a\", \"requires\": {\"X\": `\"{A\"}}",
	  "'{A' is not one {KEY} reference" },
	{ "requires lone closing brace", "{\"id\": \"a\", \"requires\": {\"X\": `\"a}\"}}",
	  "'a}' is not one {KEY} reference" },
	{ "requires empty reference", "{\"id\": \"a\", \"requires\": {\"X\": `\"{}\"}}",
	  "field 'requires.X': '{}' does not name a valid key" },
	{ "requires lowercase key", "{\"id\": \"a\", \"requires\": {\"X\": `\"{primary_db}\"}}",
	  "field 'requires.X': '{primary_db}' does not name a valid key" },
	{ "requires object value", "{\"id\": \"a\", \"requires\": {\"X\": `{\"key\": \"A\"}}}",
	  "field 'requires.X': want \"{KEY}\" or a literal value, got an object" },
	{ "requires literal with newline", "{\"id\": \"a\", \"requires\": {\"X\": `\"a\\nb\"}}",
	  "field 'requires.X': control byte 0x0a at offset 1" },
	{ "requires literal with ESC", "{\"id\": \"a\", \"requires\": {\"X\": `\"a\\u001b[2Kb\"}}",
	  "field 'requires.X': control byte 0x1b at offset 1" },
	{ "provides not an object", "{\"id\": \"a\", \"provides\": `[]}",
	  "field 'provides': want an object, got an array" },
	{ "provides bad key", "{\"id\": \"a\",\n \"provides\": {\n   `\"api_url\": \"x\"}}",
	  "field 'provides': 'api_url' is not a valid name" },
	{ "provides number", "{\"id\": \"a\", \"provides\": {\"PORT\": `8080}}",
	  "field 'provides.PORT': want a template string, got an integer" },
	{ "local_port zero", "{\"id\": \"a\", \"local_port\": `0}",
	  "field 'local_port': want an integer from 1 to 65535" },
	{ "local_port too big", "{\"id\": \"a\", \"local_port\": `65536}",
	  "field 'local_port': want an integer from 1 to 65535" },
	{ "local_port string", "{\"id\": \"a\", \"local_port\": `\"8080\"}",
	  "field 'local_port': want an integer from 1 to 65535, got a string" },
	{ "local_port real", "{\"id\": \"a\", \"local_port\": `80.5}",
	  "got a real number" },
	{ "public a string", "{\"id\": \"a\", \"public\": `\"yes\"}",
	  "field 'public': want true or false, got a string" },
	{ "syntax error", "{\"id\": \"a\",\n \"requires\": {\"X\": \"{A}\",`}}", "string or '}' expected near '}'" },
	{ "duplicate key", "{\"id\": \"a\", \"id`\": \"b\"}", "duplicate object key" },
	{ "not an object", "`[\"app\"]", "a service manifest must be a JSON object" },
};

START_TEST(test_bad)
{
	const struct bad_case *b = &bad[_i];
	struct pb_err err = PB_ERR_INIT;
	struct pb_manifest *m;
	char prefix[PATH_MAX + 128];
	const char *path;
	int line, col;

	path = write_marked("bad.json", b->text, &line, &col);
	m = pb_manifest_load(path, "f", &err);
	ck_assert_msg(m == NULL, "%s: loaded", b->name);
	ck_assert_msg(err.code == EX_DATAERR, "%s: code %d: %s", b->name, err.code, err.msg);
	snprintf(prefix, sizeof(prefix), "%s:%d:%d: ", path, line, col);
	ck_assert_msg(strncmp(err.msg, prefix, strlen(prefix)) == 0, "%s: want prefix '%s' in '%s'",
		      b->name, prefix, err.msg);
	ck_assert_msg(strstr(err.msg, b->fragment) != NULL, "%s: want '%s' in '%s'", b->name,
		      b->fragment, err.msg);
}
END_TEST

/* --- templates ----------------------------------------------------------- */

static const char *table_lookup(const char *name, void *ctx)
{
	static const char *const tab[][2] = { { "A", "a" }, { "B", "b" }, { "_X9", "x9" },
					      { "EMPTY", "" } };
	size_t i;

	(void)ctx;
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(tab[i][0], name) == 0)
			return tab[i][1];
	return NULL;
}

struct tmpl_case {
	const char *tmpl;
	const char *want;	/* NULL: an error */
	const char *fragment;	/* the error's message */
};

static const struct tmpl_case tmpl_cases[] = {
	{ "", "", NULL },
	{ "plain text", "plain text", NULL },
	{ "{A}", "a", NULL },
	{ "x{A}{B}y", "xaby", NULL },
	{ "{_X9}-{EMPTY}-", "x9--", NULL },
	{ "{{A}}", "{a}", NULL },
	{ "{ A }", "{ A }", NULL },
	{ "{\"json\": 1}", "{\"json\": 1}", NULL },
	{ "{lower}", "{lower}", NULL },
	{ "end {", "end {", NULL },
	{ "}{", "}{", NULL },
	{ "{A", NULL, "unterminated {A" },
	{ "http://{A:80", NULL, "unterminated {A" },
	{ "{A-B}", NULL, "unterminated {A" },
	{ "{NOPE}", NULL, "unknown placeholder {NOPE}" },
	{ "ok {A} then {C}", NULL, "unknown placeholder {C}" },
};

START_TEST(test_template)
{
	const struct tmpl_case *t = &tmpl_cases[_i];
	struct pb_err err = PB_ERR_INIT;
	char *out = pb_template_expand(t->tmpl, table_lookup, NULL, &err);

	if (t->want) {
		ck_assert_msg(out != NULL, "'%s': %s", t->tmpl, err.msg);
		ck_assert_str_eq(out, t->want);
	} else {
		ck_assert_msg(out == NULL, "'%s': expanded to '%s'", t->tmpl, out);
		ck_assert_int_eq(err.code, EX_DATAERR);
		ck_assert_msg(strstr(err.msg, t->fragment) != NULL, "'%s': want '%s' in '%s'",
			      t->tmpl, t->fragment, err.msg);
	}
	free(out);
}
END_TEST

static char c_host[] = "10.0.3.7", c_node[] = "api-03", c_region[] = "us-east-1",
	    c_fed[] = "seatgeek";

static void test_config(struct pb_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->host = c_host;
	cfg->node = c_node;
	cfg->region = c_region;
	cfg->federation = c_fed;
}

struct expand_case {
	const char *name;
	const char *manifest;	/* provides has one key, K */
	const char *want;	/* NULL: an error */
	const char *fragment;	/* the error's message, after "FILE: " */
};

static const struct expand_case expand_cases[] = {
	{ "each placeholder",
	  "{\"id\": \"s\", \"local_port\": 81, \"federation\": \"other\",\n"
	  " \"provides\": {\"K\": \"{HOST}|{PORT}|{NODE}|{REGION}|{FEDERATION}\"}}",
	  "10.0.3.7|81|api-03|us-east-1|other", NULL },
	{ "federation of the node", "{\"id\": \"s\", \"provides\": {\"K\": \"{FEDERATION}\"}}",
	  "node-fed", NULL },
	{ "environment entries",
	  "{\"id\": \"s\", \"environment\": {\"MOUNT\": \"/m\", \"TLS\": true, \"N\": 3},\n"
	  " \"provides\": {\"K\": \"{MOUNT}:{TLS}:{N}\"}}",
	  "/m:true:3", NULL },
	{ "PORT from environment over local_port",
	  "{\"id\": \"s\", \"environment\": {\"PORT\": 9090}, \"local_port\": 8080,\n"
	  " \"provides\": {\"K\": \"http://{HOST}:{PORT}/x\"}}",
	  "http://10.0.3.7:9090/x", NULL },
	{ "PORT from local_port", "{\"id\": \"s\", \"local_port\": 8080, \"provides\": {\"K\": \"{PORT}\"}}",
	  "8080", NULL },
	{ "node facts win over environment",
	  "{\"id\": \"s\", \"environment\": {\"HOST\": \"0.0.0.0\"}, \"provides\": {\"K\": \"{HOST}\"}}",
	  "10.0.3.7", NULL },
	{ "no placeholder", "{\"id\": \"s\", \"provides\": {\"K\": \"static\"}}", "static", NULL },
	{ "PORT with neither",
	  "{\"id\": \"s\", \"provides\": {\"K\": \"http://{HOST}:{PORT}\"}}", NULL,
	  "provides.K: {PORT} has no value: set environment.PORT or local_port" },
	{ "unknown placeholder",
	  "{\"id\": \"s\", \"environment\": {\"PORT\": 1, \"MOUNT\": \"/\", \"HOST\": \"x\"},\n"
	  " \"provides\": {\"K\": \"http://{HOST}:{PROT}\"}}",
	  NULL, "provides.K: unknown placeholder {PROT} (known: HOST, PORT, NODE, REGION, FEDERATION, MOUNT)" },
	{ "unterminated brace", "{\"id\": \"s\", \"provides\": {\"K\": \"http://{HOST:80\"}}", NULL,
	  "provides.K: unterminated {HOST (a placeholder is {NAME})" },
	{ "value with a newline",
	  "{\"id\": \"s\", \"environment\": {\"E\": \"a\\nb\"}, \"provides\": {\"K\": \"{E}\"}}", NULL,
	  "provides.K: the expanded value: control byte 0x0a at offset 1" },
	/* terminal control sequences are refused before anything is sent */
	{ "value with OSC 52",
	  "{\"id\": \"s\", \"environment\": {\"E\": \"\\u001b]52;c;eA==\\u0007\"},"
	  " \"provides\": {\"K\": \"x{E}\"}}", NULL,
	  "provides.K: the expanded value: control byte 0x1b at offset 1" },
	{ "template with DEL", "{\"id\": \"s\", \"provides\": {\"K\": \"{HOST}\\u007f\"}}", NULL,
	  "provides.K: the expanded value: control byte 0x7f at offset 8" },
	{ "template with C1 CSI", "{\"id\": \"s\", \"provides\": {\"K\": \"\\u009b2J\"}}", NULL,
	  "provides.K: the expanded value: C1 control U+009B at offset 0" },
};

START_TEST(test_expand)
{
	const struct expand_case *e = &expand_cases[_i];
	struct pb_err err = PB_ERR_INIT;
	struct pb_manifest *m;
	struct pb_config cfg;
	struct pb_kv *kv = (struct pb_kv *)1;
	size_t n = 99;
	char want[PATH_MAX + 512];
	int rc;

	test_config(&cfg);
	m = load_text(e->manifest, &err);
	ck_assert_msg(m != NULL, "%s: %s", e->name, err.msg);
	rc = pb_manifest_expand(m, &cfg, &kv, &n, &err);
	if (e->want) {
		ck_assert_msg(rc == 0, "%s: %s", e->name, err.msg);
		ck_assert_uint_eq(n, 1);
		ck_assert_str_eq(kv[0].name, "K");
		ck_assert_str_eq(kv[0].value, e->want);
	} else {
		ck_assert_msg(rc == -1, "%s: expanded", e->name);
		ck_assert_int_eq(err.code, EX_DATAERR);
		ck_assert_ptr_null(kv);
		ck_assert_uint_eq(n, 0);
		snprintf(want, sizeof(want), "%s: %s", m->path, e->fragment);
		ck_assert_msg(strcmp(err.msg, want) == 0, "%s: want '%s', got '%s'", e->name, want,
			      err.msg);
	}
	pb_kv_free_array(kv, n);
	pb_manifest_free(m);
}
END_TEST

START_TEST(test_expand_many_sorted)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_manifest *m;
	struct pb_config cfg;
	struct pb_kv *kv;
	size_t n;

	test_config(&cfg);
	m = pb_manifest_load(data_path("chef-extras.json"), "fed-a", &err);
	ck_assert_msg(m != NULL, "%s", err.msg);
	ck_assert_int_eq(pb_manifest_expand(m, &cfg, &kv, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(kv[0].name, "API_NODE");
	ck_assert_str_eq(kv[0].value, "api-03.us-east-1.fed-a");
	ck_assert_str_eq(kv[1].name, "API_URL");
	ck_assert_str_eq(kv[1].value, "http://10.0.3.7:1100");
	pb_kv_free_array(kv, n);
	pb_manifest_free(m);

	/* none provided: an empty result */
	m = pb_manifest_load(data_path("minimal.json"), "f", &err);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(pb_manifest_expand(m, &cfg, &kv, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	pb_kv_free_array(kv, n);
	pb_manifest_free(m);
}
END_TEST

START_TEST(test_expand_too_long)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_manifest *m;
	struct pb_config cfg;
	struct pb_kv *kv;
	size_t n, i;
	char *text = malloc(8192);

	ck_assert_ptr_nonnull(text);
	test_config(&cfg);
	/* 4090 bytes of environment plus "{HOST}" (8 bytes) is over 4096 */
	strcpy(text, "{\"id\": \"s\", \"environment\": {\"E\": \"");
	for (i = strlen(text), n = i + 4090; i < n; i++)
		text[i] = 'x';
	strcpy(text + i, "\"}, \"provides\": {\"K\": \"{E}{HOST}\"}}");
	m = load_text(text, &err);
	free(text);
	ck_assert_msg(m != NULL, "%s", err.msg);
	ck_assert_int_eq(pb_manifest_expand(m, &cfg, &kv, &n, &err), -1);
	ck_assert_msg(strstr(err.msg, "provides.K: the expanded value: 4098 bytes, more than 4096"),
		      "%s", err.msg);
	pb_manifest_free(m);
}
END_TEST

/* --- directories and sets ------------------------------------------------ */

static void make_dir(const char *name)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	ck_assert_int_eq(mkdir(path, 0755), 0);
}

static int load_sub(const char *sub, int allow_missing, struct pb_manifest_set *set,
		    struct pb_err *err)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, sub);
	return pb_manifest_load_dir(path, "fed", allow_missing, set, err);
}

START_TEST(test_load_dir)
{
	struct pb_manifest_set set = { (struct pb_manifest **)1, 99 };
	struct pb_err err = PB_ERR_INIT;
	const char **keys;
	size_t n;

	make_dir("svc");
	write_file("svc/www.json",
		   "{\"id\": \"www\", \"requires\": {\"API_URL\": \"{API_URL}\", \"DB\": \"{PRIMARY_DB}\"}}");
	write_file("svc/api.json",
		   "{\"id\": \"api\", \"requires\": {\"DB\": \"{PRIMARY_DB}\", \"MODE\": \"ro\"}}");
	write_file("svc/cron.json", "{\"id\": \"cron\", \"federation\": \"other\"}");
	write_file("svc/notes.txt", "not json");
	write_file("svc/.hidden.json", "{broken");
	write_file("svc/.json", "{broken");
	make_dir("svc/sub.json");
	ck_assert_msg(load_sub("svc", 0, &set, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(set.n, 3);
	/* sorted by id */
	ck_assert_str_eq(set.items[0]->id, "api");
	ck_assert_str_eq(set.items[1]->id, "cron");
	ck_assert_str_eq(set.items[2]->id, "www");
	ck_assert_str_eq(set.items[0]->federation, "fed");
	ck_assert_str_eq(set.items[1]->federation, "other");
	ck_assert_ptr_eq(pb_manifest_set_find(&set, "www"), set.items[2]);
	ck_assert_ptr_eq(pb_manifest_set_find(&set, "api"), set.items[0]);
	ck_assert_ptr_null(pb_manifest_set_find(&set, "nope"));

	keys = pb_manifest_set_required_keys(&set, &n);
	ck_assert_ptr_nonnull(keys);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(keys[0], "API_URL");
	ck_assert_str_eq(keys[1], "PRIMARY_DB");
	ck_assert_ptr_null(keys[2]);
	free(keys);
	pb_manifest_set_release(&set);
	ck_assert_ptr_null(set.items);
	ck_assert_uint_eq(set.n, 0);
}
END_TEST

START_TEST(test_load_dir_duplicate)
{
	struct pb_manifest_set set;
	struct pb_err err = PB_ERR_INIT;
	char a[PATH_MAX + 64], b[PATH_MAX + 64];

	make_dir("d");
	snprintf(a, sizeof(a), "%s", write_file("d/a.json", "{\"id\": \"same\"}"));
	snprintf(b, sizeof(b), "%s", write_file("d/b.json", "{\"id\": \"same\", \"public\": true}"));
	write_file("d/c.json", "{\"id\": \"other\"}");
	ck_assert_int_eq(load_sub("d", 0, &set, &err), -1);
	ck_assert_int_eq(err.code, EX_DATAERR);
	ck_assert_msg(strstr(err.msg, "duplicate service id 'same'"), "%s", err.msg);
	ck_assert_msg(strstr(err.msg, a) && strstr(err.msg, b), "%s", err.msg);
	ck_assert_ptr_null(set.items);
	ck_assert_uint_eq(set.n, 0);
}
END_TEST

START_TEST(test_load_dir_bad_file)
{
	struct pb_manifest_set set;
	struct pb_err err = PB_ERR_INIT;
	char want[PATH_MAX + 64];

	make_dir("d");
	write_file("d/a.json", "{\"id\": \"a\"}");
	write_file("d/b.json", "{\"id\": \"b\",\n \"local_port\": 0}");
	snprintf(want, sizeof(want), "%s/d/b.json:2:16: field 'local_port'", tmpdir);
	ck_assert_int_eq(load_sub("d", 1, &set, &err), -1);
	ck_assert_int_eq(err.code, EX_DATAERR);
	ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
}
END_TEST

START_TEST(test_load_dir_missing_or_empty)
{
	struct pb_manifest_set set;
	struct pb_err err = PB_ERR_INIT;
	const char **keys;
	size_t n;

	ck_assert_int_eq(load_sub("none", 1, &set, &err), 0);
	ck_assert_uint_eq(set.n, 0);
	keys = pb_manifest_set_required_keys(&set, &n);
	ck_assert_ptr_nonnull(keys);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(keys[0]);
	free(keys);
	pb_manifest_set_release(&set);

	ck_assert_int_eq(load_sub("none", 0, &set, &err), -1);
	ck_assert_int_eq(err.code, EX_NOINPUT);
	ck_assert_msg(strstr(err.msg, "/none: cannot open the services directory"), "%s", err.msg);

	make_dir("empty");
	write_file("empty/readme.txt", "x");
	ck_assert_int_eq(load_sub("empty", 1, &set, &err), 0);
	ck_assert_uint_eq(set.n, 0);
	pb_manifest_set_release(&set);
	ck_assert_int_eq(load_sub("empty", 0, &set, &err), -1);
	ck_assert_int_eq(err.code, EX_NOINPUT);
	ck_assert_msg(strstr(err.msg, "/empty: no service manifests"), "%s", err.msg);
}
END_TEST

START_TEST(test_wants)
{
	struct pb_manifest_set set;
	struct pb_want_list wl;
	struct pb_err err = PB_ERR_INIT;

	make_dir("d");
	write_file("d/a.json",
		   "{\"id\": \"a\", \"requires\": {\"DB\": \"{PRIMARY_DB}\", \"MODE\": \"ro\"}}");
	write_file("d/b.json",
		   "{\"id\": \"b\", \"requires\": {\"DB\": \"{PRIMARY_DB}\", \"MODE\": \"ro\", \"Z\": \"{Z}\"}}");
	write_file("d/c.json", "{\"id\": \"c\"}");
	ck_assert_int_eq(load_sub("d", 0, &set, &err), 0);
	ck_assert_int_eq(pb_manifest_set_wants(&set, &wl, &err), 0);
	ck_assert_uint_eq(wl.n, 3);
	ck_assert_str_eq(wl.items[0]->env, "DB");
	ck_assert_str_eq(wl.items[0]->key, "PRIMARY_DB");
	ck_assert_str_eq(wl.items[1]->env, "MODE");
	ck_assert_str_eq(wl.items[1]->literal, "ro");
	ck_assert_str_eq(wl.items[2]->env, "Z");
	pb_want_list_release(&wl);
	ck_assert_ptr_null(wl.items);
	pb_manifest_set_release(&set);
}
END_TEST

struct conflict_case {
	const char *a, *b;	/* the requires of manifests a and b */
	const char *fragment;
};

static const struct conflict_case conflicts[] = {
	{ "{\"DB\": \"{PRIMARY_DB}\"}", "{\"DB\": \"{OTHER_DB}\"}",
	  "requires.DB: a (" },
	{ "{\"DB\": \"{PRIMARY_DB}\"}", "{\"DB\": \"mysql://x\"}",
	  "wants {PRIMARY_DB} but b (" },
	{ "{\"MODE\": \"ro\"}", "{\"MODE\": \"rw\"}", "wants 'ro' but b (" },
};

START_TEST(test_wants_conflict)
{
	const struct conflict_case *cc = &conflicts[_i];
	struct pb_manifest_set set;
	struct pb_want_list wl = { (const struct pb_require **)1, 5 };
	struct pb_err err = PB_ERR_INIT;
	char text[512];

	make_dir("d");
	snprintf(text, sizeof(text), "{\"id\": \"a\", \"requires\": %s}", cc->a);
	write_file("d/1.json", text);
	snprintf(text, sizeof(text), "{\"id\": \"b\", \"requires\": %s}", cc->b);
	write_file("d/2.json", text);
	ck_assert_int_eq(load_sub("d", 0, &set, &err), 0);
	ck_assert_int_eq(pb_manifest_set_wants(&set, &wl, &err), -1);
	ck_assert_int_eq(err.code, EX_DATAERR);
	ck_assert_msg(strstr(err.msg, cc->fragment), "want '%s' in '%s'", cc->fragment, err.msg);
	ck_assert_msg(strstr(err.msg, "/d/1.json") && strstr(err.msg, "/d/2.json"), "%s",
		      err.msg);
	ck_assert_ptr_null(wl.items);
	ck_assert_uint_eq(wl.n, 0);
	pb_manifest_set_release(&set);
}
END_TEST

static Suite *manifest_suite(void)
{
	Suite *s = suite_create("manifest");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_spec_example);
	tcase_add_test(tc, test_chef_extras);
	tcase_add_test(tc, test_minimal);
	tcase_add_test(tc, test_nulls_and_empties);
	tcase_add_test(tc, test_missing_file);
	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_loop_test(tc, test_template, 0, (int)(sizeof(tmpl_cases) / sizeof(tmpl_cases[0])));
	tcase_add_loop_test(tc, test_expand, 0,
			    (int)(sizeof(expand_cases) / sizeof(expand_cases[0])));
	tcase_add_test(tc, test_expand_many_sorted);
	tcase_add_test(tc, test_expand_too_long);
	tcase_add_test(tc, test_load_dir);
	tcase_add_test(tc, test_load_dir_duplicate);
	tcase_add_test(tc, test_load_dir_bad_file);
	tcase_add_test(tc, test_load_dir_missing_or_empty);
	tcase_add_test(tc, test_wants);
	tcase_add_loop_test(tc, test_wants_conflict, 0,
			    (int)(sizeof(conflicts) / sizeof(conflicts[0])));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pb_suite_run(manifest_suite());
}
