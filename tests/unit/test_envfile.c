/* test_envfile.c — shell quoting that a real /bin/sh reads back byte for
 * byte, the rendered env file, and the atomic write under it. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envfile.h"
#include "suite_main.h"

#define HEADER ""	/* the file is the sorted lines only: no comment before them */

static char tmpdir[256];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/pb-envfile.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		if (unlink(p))
			rmdir(p);
	}
	closedir(d);
	rmdir(tmpdir);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n = 0, cap = 256, r;

	if (!f)
		return NULL;
	buf = malloc(cap);
	while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (n + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Runs /bin/sh: sources file, prints "$name" with printf %s; returns what
 * it printed (malloc'd, *len bytes). No shell ever sees our own text but
 * the fixed script: the file and the name travel as arguments. */
static char *sh_read_back(const char *file, const char *name, size_t *len)
{
	int p[2], status;
	char script[256], *out = malloc(65536);
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	snprintf(script, sizeof(script), ". \"$1\" || exit 3; printf %%s \"$%s\"", name);
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		if (chdir(tmpdir))	/* a relative `touch` would land here */
			_exit(126);
		execl("/bin/sh", "sh", "-c", script, "sh", file, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while ((r = read(p[0], out + n, 65535 - n)) > 0)
		n += (size_t)r;
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sh exited %d", status);
	out[n] = '\0';
	*len = n;
	return out;
}

/* ---- quoting ---- */

static const struct {
	const char *value, *quoted;
} quotes[] = {
	{ "", "''" },
	{ "plain", "'plain'" },
	{ "it's", "'it'\\''s'" },
	{ "'", "''\\'''" },
	{ "''", "''\\'''\\'''" },
	{ "'\\''", "''\\''\\'\\'''\\'''" },
	{ "$(rm -rf /)", "'$(rm -rf /)'" },
	{ "`id`", "'`id`'" },
	{ "a b  c", "'a b  c'" },
	{ "say \"hi\"", "'say \"hi\"'" },
	{ "C:\\dir\\n\\", "'C:\\dir\\n\\'" },
	{ "caf\xc3\xa9 \xe2\x98\x83", "'caf\xc3\xa9 \xe2\x98\x83'" },
	{ "$HOME ${PATH} $1 $$ !x *.c ~ ; & | < > # %", "'$HOME ${PATH} $1 $$ !x *.c ~ ; & | < > # %'" },
};

START_TEST(shell_quote_text)
{
	char *q = pb_shell_quote(quotes[_i].value, strlen(quotes[_i].value));

	ck_assert_ptr_nonnull(q);
	ck_assert_str_eq(q, quotes[_i].quoted);
	free(q);
}
END_TEST

START_TEST(shell_quote_uses_len)
{
	char *q = pb_shell_quote("abc'def", 4);

	ck_assert_str_eq(q, "'abc'\\'''");
	free(q);
}
END_TEST

/* Hostile values, each rendered, written, sourced by /bin/sh and read
 * back byte-identical; none of the canary commands may run. */
static const char *const hostile[] = {
	"",
	"'",
	"it's a 'quoted' \"string\"",
	"$(touch canary-dollar)",
	"`touch canary-backtick`",
	"'; touch canary-quote; '",
	"'$(touch canary-mixed)'",
	"\"; touch canary-dq; \"",
	"\\'; touch canary-bs; \\'",
	"a b\tc  d ",
	" leading and trailing ",
	"back\\slash \\\\ \\n \\t \\",
	"caf\xc3\xa9 \xe2\x98\x83 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x9a\x80",
	"$HOME ${PATH:-x} $1 $$ $? !! *.c ? [a] ~root",
	"; & | < > >> ( ) { } # % ^ = + , :",
	"http://user:p'a\"ss@db-1:3306/app?x=1&y=$(z)",
	"\x01\x02\x1b[31mred\x1b[0m\x7f",
	"export EVIL=1",
	"x'\n",	/* a newline inside quotes is still literal for sh */
};

START_TEST(shell_reads_back_hostile_values)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_kv var = { (char *)"PB_TEST_VALUE", (char *)hostile[_i] };
	char file[512], canary[512], *got;
	static const char *const canaries[] = {
		"canary-dollar", "canary-backtick", "canary-quote", "canary-mixed",
		"canary-dq", "canary-bs",
	};
	size_t len;

	make_tmpdir();
	snprintf(file, sizeof(file), "%s/app.conf", tmpdir);
	ck_assert_msg(pb_envfile_write(file, &var, 1, &err) == 0, "%s", err.msg);
	got = sh_read_back(file, "PB_TEST_VALUE", &len);
	ck_assert_uint_eq(len, strlen(hostile[_i]));
	ck_assert_mem_eq(got, hostile[_i], len);
	free(got);
	/* EVIL must not have been exported by the value "export EVIL=1" */
	got = sh_read_back(file, "EVIL", &len);
	ck_assert_uint_eq(len, 0);
	free(got);
	for (size_t k = 0; k < sizeof(canaries) / sizeof(canaries[0]); k++) {
		snprintf(canary, sizeof(canary), "%s/%s", tmpdir, canaries[k]);
		ck_assert_msg(access(canary, F_OK) != 0, "%s was created: the shell ran a value",
			      canaries[k]);
	}
	remove_tmpdir();
}
END_TEST

/* An absolute canary path too, in case a shell's cwd is not ours. */
START_TEST(shell_runs_nothing_absolute)
{
	struct pb_err err = PB_ERR_INIT;
	char file[512], canary[512], value[2048], *got;
	struct pb_kv var = { (char *)"V", value };
	size_t len;

	make_tmpdir();
	snprintf(canary, sizeof(canary), "%s/canary-abs", tmpdir);
	snprintf(value, sizeof(value), "$(touch %s)`touch %s`'$(touch %s)'", canary, canary,
		 canary);
	snprintf(file, sizeof(file), "%s/app.conf", tmpdir);
	ck_assert_int_eq(pb_envfile_write(file, &var, 1, &err), 0);
	got = sh_read_back(file, "V", &len);
	ck_assert_str_eq(got, value);
	ck_assert_int_ne(access(canary, F_OK), 0);
	free(got);
	remove_tmpdir();
}
END_TEST

/* ---- the systemd format ---- */

/* The reading of an EnvironmentFile= by systemd (systemd.exec(5); the
 * state machine of its env-file parser, written again here: no systemd
 * here can read a file and print what it got). A line "NAME=..." gives
 * NAME and its value; outside quotes whitespace around is dropped and a
 * backslash escapes the next byte (a backslash-newline joins lines);
 * inside '...' every byte is literal; inside "..." every byte is literal
 * (newlines too) except that a backslash before one of " \ ` $ stands for
 * that byte, a backslash-newline is dropped, and a backslash before
 * anything else stays; # or ; starts a comment line. Returns the value of
 * name (malloc'd, *len bytes; the last assignment wins) or NULL. */
static char *systemd_read_back(const char *text, const char *name, size_t *len)
{
	enum { PRE_KEY, KEY, PRE_VALUE, VALUE, VALUE_ESC, SQ, DQ, DQ_ESC, COMMENT } st = PRE_KEY;
	size_t cap = strlen(text) + 1, nk = 0, nv = 0, vtrail = SIZE_MAX;
	char *key = calloc(1, cap), *val = calloc(1, cap), *found = NULL;
	int have_val = 0;

	for (const char *p = text; ; p++) {
		char c = *p;
		int end_line = c == '\n' || c == '\r' || c == '\0';

		switch (st) {
		case PRE_KEY:
			if (c == '#' || c == ';')
				st = COMMENT;
			else if (c && !strchr(" \t\n\r", c)) {
				st = KEY;
				key[nk++] = c;
			}
			break;
		case KEY:
			if (end_line) {
				st = PRE_KEY;
				nk = 0;
			} else if (c == '=') {
				st = PRE_VALUE;
				nv = 0;
				have_val = 0;
				vtrail = SIZE_MAX;
			} else {
				key[nk++] = c;
			}
			break;
		case PRE_VALUE:
		case VALUE:
			if (end_line) {
				while (nk && strchr(" \t", key[nk - 1]))
					nk--;
				key[nk] = '\0';
				if (st == VALUE && vtrail != SIZE_MAX)
					nv = vtrail;
				val[nv] = '\0';
				if (!strcmp(key, name)) {
					free(found);
					found = malloc(nv + 1);
					memcpy(found, val, nv + 1);
					*len = nv;
				}
				st = PRE_KEY;
				nk = 0;
			} else if (st == PRE_VALUE && c == '\'') {
				st = SQ;
			} else if (st == PRE_VALUE && c == '"') {
				st = DQ;
			} else if (c == '\\') {
				st = VALUE_ESC;
				vtrail = SIZE_MAX;
			} else if (st == VALUE || !strchr(" \t", c)) {
				if (!strchr(" \t", c))
					vtrail = SIZE_MAX;
				else if (vtrail == SIZE_MAX)
					vtrail = nv;
				st = VALUE;
				val[nv++] = c;
			}
			break;
		case VALUE_ESC:
			st = VALUE;
			if (c && c != '\n' && c != '\r')
				val[nv++] = c;
			break;
		case SQ:
			if (c == '\'')
				st = PRE_VALUE;
			else if (c)
				val[nv++] = c;
			break;
		case DQ:
			if (c == '"')
				st = PRE_VALUE;
			else if (c == '\\')
				st = DQ_ESC;
			else if (c)
				val[nv++] = c;
			break;
		case DQ_ESC:
			st = DQ;
			if (c && strchr("\"\\`$", c)) {
				val[nv++] = c;
			} else if (c && c != '\n') {
				val[nv++] = '\\';
				val[nv++] = c;
			}
			break;
		case COMMENT:
			if (c == '\n' || c == '\r')
				st = PRE_KEY;
			break;
		}
		(void)have_val;
		if (!c) {
			/* a file ending inside a value still assigns it */
			if (st == SQ || st == DQ || st == DQ_ESC || st == VALUE_ESC) {
				key[nk] = '\0';
				val[nv] = '\0';
				if (!strcmp(key, name)) {
					free(found);
					found = malloc(nv + 1);
					memcpy(found, val, nv + 1);
					*len = nv;
				}
			}
			break;
		}
	}
	free(key);
	free(val);
	return found;
}

/* The parser above, checked on systemd.exec(5)'s own examples and rules. */
START_TEST(systemd_parser_rules)
{
	size_t len = 0;
	char *v;

	v = systemd_read_back("# c\nA=plain\n; c\nB = 'single $x \\n'\nC=\"d \\\"q\\\" \\$x \\n\"\n", "A", &len);
	ck_assert_str_eq(v, "plain");
	free(v);
	v = systemd_read_back("B = 'single $x \\n'\n", "B", &len);
	ck_assert_str_eq(v, "single $x \\n");
	free(v);
	v = systemd_read_back("C=\"d \\\"q\\\" \\$x \\n\"\n", "C", &len);
	ck_assert_str_eq(v, "d \"q\" $x \\n");
	free(v);
	v = systemd_read_back("D=\"two\nlines\"\nE=cont\\\nued  \n", "D", &len);
	ck_assert_str_eq(v, "two\nlines");
	free(v);
	v = systemd_read_back("E=cont\\\nued  \n", "E", &len);
	ck_assert_str_eq(v, "contued");
	free(v);
}
END_TEST

/* Every hostile value, written in the systemd format, read back byte for
 * byte by systemd's rules, and by /bin/sh too (the same double-quote
 * rules), with no canary run. (A value systemd would refuse, invalid
 * UTF-8, cannot come: event values and statics are JSON strings.) */
START_TEST(systemd_reads_back_hostile_values)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_kv vars[2] = { { (char *)"PB_TEST_VALUE", (char *)hostile[_i] },
				 { (char *)"PB_ZZ_AFTER", (char *)"after" } };
	char file[512], canary[512], *got, *text;
	size_t len = 0;

	make_tmpdir();
	snprintf(file, sizeof(file), "%s/app.env", tmpdir);
	ck_assert_msg(pb_envfile_write_as(file, vars, 2, PB_ENV_SYSTEMD, &err) == 0, "%s", err.msg);
	text = slurp(file, NULL);
	ck_assert_msg(!strncmp(text, HEADER "PB_TEST_VALUE=\"", strlen(HEADER) + 15), "%s", text);
	got = systemd_read_back(text, "PB_TEST_VALUE", &len);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(len, strlen(hostile[_i]));
	ck_assert_mem_eq(got, hostile[_i], len);
	free(got);
	got = systemd_read_back(text, "PB_ZZ_AFTER", &len);
	ck_assert_str_eq(got, "after");	/* the value did not run into the next line */
	free(got);
	got = systemd_read_back(text, "EVIL", &len);
	ck_assert_ptr_null(got);
	free(text);
	got = sh_read_back(file, "PB_TEST_VALUE", &len);
	ck_assert_uint_eq(len, strlen(hostile[_i]));
	ck_assert_mem_eq(got, hostile[_i], len);
	free(got);
	for (const char *const *k = (const char *const[]){ "canary-dollar", "canary-backtick",
			"canary-quote", "canary-mixed", "canary-dq", "canary-bs", NULL }; *k; k++) {
		snprintf(canary, sizeof(canary), "%s/%s", tmpdir, *k);
		ck_assert_msg(access(canary, F_OK) != 0, "%s was created", *k);
	}
	remove_tmpdir();
}
END_TEST

START_TEST(systemd_render_exact)
{
	struct pb_kv vars[] = { { (char *)"B", (char *)"say \"hi\" $HOME `id` \\" },
				{ (char *)"A", (char *)"it's\nx" } };
	char *t = pb_envfile_render_as(vars, 2, PB_ENV_SYSTEMD);

	ck_assert_str_eq(t, HEADER "A=\"it's\nx\"\nB=\"say \\\"hi\\\" \\$HOME \\`id\\` \\\\\"\n");
	free(t);
}
END_TEST

/* ---- render ---- */

START_TEST(render_exact_and_sorted)
{
	struct pb_kv vars[] = {
		{ (char *)"ZED", (char *)"z" },
		{ (char *)"_X", (char *)"it's" },
		{ (char *)"A_1", (char *)"" },
		{ (char *)"B", (char *)"$(x) `y` \"q\" \\" },
		{ (char *)"AA", (char *)"a b" },
	};
	char *text = pb_envfile_render(vars, 5);

	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, HEADER
			 "export AA='a b'\n"
			 "export A_1=''\n"
			 "export B='$(x) `y` \"q\" \\'\n"
			 "export ZED='z'\n"
			 "export _X='it'\\''s'\n");
	/* the caller's array is left alone */
	ck_assert_str_eq(vars[0].name, "ZED");
	ck_assert_str_eq(vars[4].name, "AA");
	free(text);
}
END_TEST

START_TEST(render_empty)
{
	char *text = pb_envfile_render(NULL, 0);

	ck_assert_str_eq(text, HEADER);
	free(text);
}
END_TEST

START_TEST(render_refuses_bad_names)
{
	static const char *const names[] = {
		"lower", "A B", "A;touch x", "A=B", "1A", "", "A-B", "$(x)",
	};
	struct pb_kv vars[2] = { { (char *)"GOOD", (char *)"v" }, { NULL, (char *)"v" } };
	struct pb_err err = PB_ERR_INIT;
	char file[512];

	make_tmpdir();
	snprintf(file, sizeof(file), "%s/app.conf", tmpdir);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		vars[1].name = (char *)names[i];
		ck_assert_ptr_null(pb_envfile_render(vars, 2));
		ck_assert_int_eq(pb_envfile_write(file, vars, 2, &err), -1);
		ck_assert_int_eq(err.code, EX_DATAERR);
		ck_assert_msg(strstr(err.msg, file) && strstr(err.msg, "env var name"), "%s",
			      err.msg);
	}
	ck_assert_int_eq(count_entries(tmpdir), 0);
	remove_tmpdir();
}
END_TEST

/* Many variables, all read back by the shell. */
START_TEST(render_many_read_back)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_kv vars[40];
	char names[40][16], values[40][64], file[512], *got;
	size_t len;
	int i;

	make_tmpdir();
	for (i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "K_%02d", 39 - i);
		snprintf(values[i], sizeof(values[i]), "v%d 'q' $(touch c%d)", i, i);
		vars[i].name = names[i];
		vars[i].value = values[i];
	}
	snprintf(file, sizeof(file), "%s/app.conf", tmpdir);
	ck_assert_int_eq(pb_envfile_write(file, vars, 40, &err), 0);
	for (i = 0; i < 40; i += 7) {
		got = sh_read_back(file, names[i], &len);
		ck_assert_str_eq(got, values[i]);
		free(got);
	}
	ck_assert_int_eq(count_entries(tmpdir), 1);	/* no canary, no temp file */
	got = slurp(file, &len);
	ck_assert_ptr_nonnull(strstr(got, "export K_00="));
	ck_assert(strstr(got, "export K_00=") < strstr(got, "export K_01="));
	ck_assert(strstr(got, "export K_38=") < strstr(got, "export K_39="));
	free(got);
	remove_tmpdir();
}
END_TEST

/* ---- atomic write ---- */

START_TEST(atomic_write_content_and_mode)
{
	struct pb_err err = PB_ERR_INIT;
	char file[512], *got;
	struct stat st, st2;
	mode_t old = umask(077);	/* the mode must not depend on the umask */
	size_t len;

	make_tmpdir();
	snprintf(file, sizeof(file), "%s/app.conf", tmpdir);
	ck_assert_msg(pb_file_write_atomic(file, "hello\n", 6, 0640, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	got = slurp(file, &len);
	ck_assert_uint_eq(len, 6);
	ck_assert_str_eq(got, "hello\n");
	free(got);
	ck_assert_int_eq(count_entries(tmpdir), 1);

	/* replaced by a new inode (rename), never rewritten in place */
	ck_assert_int_eq(pb_file_write_atomic(file, "bye", 3, 0600, &err), 0);
	ck_assert_int_eq(stat(file, &st2), 0);
	ck_assert_int_ne(st.st_ino, st2.st_ino);
	ck_assert_int_eq(st2.st_mode & 07777, 0600);
	got = slurp(file, &len);
	ck_assert_str_eq(got, "bye");
	free(got);

	/* empty content, and binary content with NUL bytes */
	ck_assert_int_eq(pb_file_write_atomic(file, "", 0, 0640, &err), 0);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(pb_file_write_atomic(file, "a\0b", 3, 0640, &err), 0);
	got = slurp(file, &len);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(got, "a\0b", 3);
	free(got);
	ck_assert_int_eq(count_entries(tmpdir), 1);
	umask(old);
	remove_tmpdir();
}
END_TEST

START_TEST(atomic_write_large)
{
	struct pb_err err = PB_ERR_INIT;
	size_t big = 3 * 1024 * 1024 + 17, len;
	char file[512], *data = malloc(big), *got;

	for (size_t i = 0; i < big; i++)
		data[i] = (char)('a' + i % 26);
	make_tmpdir();
	snprintf(file, sizeof(file), "%s/big", tmpdir);
	ck_assert_int_eq(pb_file_write_atomic(file, data, big, 0644, &err), 0);
	got = slurp(file, &len);
	ck_assert_uint_eq(len, big);
	ck_assert_int_eq(memcmp(got, data, big), 0);
	free(got);
	free(data);
	remove_tmpdir();
}
END_TEST

START_TEST(envfile_write_mode_0640)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_kv var = { (char *)"API_URL", (char *)"http://a:1,http://b:2" };
	char file[512], *got;
	struct stat st;
	mode_t old = umask(0);

	make_tmpdir();
	snprintf(file, sizeof(file), "%s/app.conf", tmpdir);
	ck_assert_int_eq(pb_envfile_write(file, &var, 1, &err), 0);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	got = slurp(file, NULL);
	ck_assert_str_eq(got, HEADER "export API_URL='http://a:1,http://b:2'\n");
	free(got);
	ck_assert_int_eq(count_entries(tmpdir), 1);
	umask(old);
	remove_tmpdir();
}
END_TEST

START_TEST(atomic_write_missing_dir)
{
	struct pb_err err = PB_ERR_INIT;
	char file[512];

	make_tmpdir();
	snprintf(file, sizeof(file), "%s/no/such/dir/app.conf", tmpdir);
	ck_assert_int_eq(pb_file_write_atomic(file, "x", 1, 0640, &err), -1);
	ck_assert_int_eq(err.code, EX_CANTCREAT);
	ck_assert_msg(!strncmp(err.msg, file, strlen(file)), "%s", err.msg);
	ck_assert_msg(strstr(err.msg, strerror(ENOENT)), "%s", err.msg);
	ck_assert_int_eq(count_entries(tmpdir), 0);

	/* a file where a directory should be */
	snprintf(file, sizeof(file), "%s/afile", tmpdir);
	ck_assert_int_eq(pb_file_write_atomic(file, "x", 1, 0640, &err), 0);
	snprintf(file, sizeof(file), "%s/afile/app.conf", tmpdir);
	ck_assert_int_eq(pb_file_write_atomic(file, "x", 1, 0640, &err), -1);
	ck_assert_int_eq(err.code, EX_CANTCREAT);
	ck_assert_msg(!strncmp(err.msg, file, strlen(file)), "%s", err.msg);
	ck_assert_msg(strstr(err.msg, strerror(ENOTDIR)), "%s", err.msg);
	ck_assert_int_eq(count_entries(tmpdir), 1);
	unlink(file);
	snprintf(file, sizeof(file), "%s/afile", tmpdir);
	unlink(file);
	snprintf(file, sizeof(file), "%s/no/such/dir/app.conf", tmpdir);

	/* the same through pb_envfile_write */
	pb_err_clear(&err);
	ck_assert_int_eq(pb_envfile_write(file, NULL, 0, &err), -1);
	ck_assert_int_eq(err.code, EX_CANTCREAT);
	ck_assert_msg(strstr(err.msg, file), "%s", err.msg);
	remove_tmpdir();
}
END_TEST

/* rename fails (the path is a directory): the temp file is removed and
 * the old directory is left as it was. */
START_TEST(atomic_write_failure_leaves_no_temp)
{
	struct pb_err err = PB_ERR_INIT;
	char path[512];

	make_tmpdir();
	snprintf(path, sizeof(path), "%s/adir", tmpdir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(pb_file_write_atomic(path, "x", 1, 0640, &err), -1);
	ck_assert_int_eq(err.code, EX_CANTCREAT);
	ck_assert_msg(strstr(err.msg, path), "%s", err.msg);
	ck_assert_int_eq(count_entries(tmpdir), 1);	/* adir only */
	ck_assert_int_eq(count_entries(path), 0);

	/* a trailing slash is not a file path */
	snprintf(path, sizeof(path), "%s/", tmpdir);
	ck_assert_int_eq(pb_file_write_atomic(path, "x", 1, 0640, &err), -1);
	ck_assert_int_eq(err.code, EX_CANTCREAT);
	remove_tmpdir();
}
END_TEST

/* An unwritable directory. Root may write anywhere, so as root the write
 * is made by a child that has given root up (uid and gid 65534, nobody);
 * the temp dir is made searchable for it. */
static int write_unwritable(const char *file)
{
	struct pb_err err = PB_ERR_INIT;

	if (pb_file_write_atomic(file, "x", 1, 0640, &err) != -1)
		return 1;
	if (err.code != EX_CANTCREAT)
		return 2;
	if (!strstr(err.msg, file) || !strstr(err.msg, strerror(EACCES)))
		return 3;
	return 0;
}

START_TEST(atomic_write_unwritable_dir)
{
	char dir[512], file[600];
	int status, rc;
	pid_t pid;

	make_tmpdir();
	snprintf(dir, sizeof(dir), "%s/ro", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0500), 0);
	snprintf(file, sizeof(file), "%s/app.conf", dir);
	if (geteuid() != 0) {
		rc = write_unwritable(file);
	} else {
		ck_assert_int_eq(chmod(tmpdir, 0711), 0);
		ck_assert_int_eq(chmod(dir, 0555), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			if (setgroups(0, NULL) || setgid(65534) || setuid(65534) || geteuid() == 0)
				_exit(9);
			_exit(write_unwritable(file));
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status), "the unprivileged child died");
		rc = WEXITSTATUS(status);
		ck_assert_msg(rc != 9, "cannot give root up in the child");
	}
	ck_assert_msg(rc == 0, "the write into a directory it cannot write: %s",
		      rc == 1 ? "succeeded" : rc == 2 ? "not EX_CANTCREAT" :
		      "the message names neither the file nor EACCES");
	chmod(dir, 0700);
	ck_assert_int_eq(count_entries(dir), 0);
	remove_tmpdir();
}
END_TEST

/* A bare file name is written in the current directory. */
START_TEST(atomic_write_relative)
{
	struct pb_err err = PB_ERR_INIT;
	char cwd[4096], *got;

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	make_tmpdir();
	ck_assert_int_eq(chdir(tmpdir), 0);
	ck_assert_msg(pb_file_write_atomic("rel.conf", "r", 1, 0640, &err) == 0, "%s", err.msg);
	got = slurp("rel.conf", NULL);
	ck_assert_str_eq(got, "r");
	free(got);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_int_eq(count_entries(tmpdir), 1);
	remove_tmpdir();
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* pb_file_replace: the same rename-over (a new inode, mode, no temp file
 * left), only without the fsyncs */
START_TEST(replace_without_sync)
{
	struct pb_err err = PB_ERR_INIT;
	char file[512], *got;
	struct stat st, st2;
	size_t len;

	make_tmpdir();
	snprintf(file, sizeof(file), "%s/state.json", tmpdir);
	ck_assert_msg(pb_file_replace(file, "{}", 2, 0640, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(pb_file_replace(file, "{\"a\":1}", 7, 0640, &err), 0);
	ck_assert_int_eq(stat(file, &st2), 0);
	ck_assert_int_ne(st.st_ino, st2.st_ino);
	got = slurp(file, &len);
	ck_assert_str_eq(got, "{\"a\":1}");
	free(got);
	ck_assert_int_eq(count_entries(tmpdir), 1);
	unlink(file);
	snprintf(file, sizeof(file), "%s/missing/state.json", tmpdir);
	ck_assert_int_eq(pb_file_replace(file, "x", 1, 0640, &err), -1);
	ck_assert_int_eq(err.code, EX_CANTCREAT);
	ck_assert_msg(strstr(err.msg, file) != NULL, "%s", err.msg);
	remove_tmpdir();
}
END_TEST

/* pb_file_out: a file written in pieces is put in place whole at the
 * commit, the old one untouched until then; a failed write (over
 * RLIMIT_FSIZE: EFBIG) fails the commit, which leaves the old file and
 * no temporary file; an abort leaves nothing. */
START_TEST(file_out_pieces_and_failures)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_file_out o;
	struct rlimit rl, old_rl;
	char file[512], *got, piece[1000];
	size_t len;
	int i;

	make_tmpdir();
	snprintf(file, sizeof(file), "%s/state.json", tmpdir);
	ck_assert_int_eq(pb_file_replace(file, "old", 3, 0640, &err), 0);
	ck_assert_msg(pb_file_out_open(&o, file, &err) == 0, "%s", err.msg);
	memset(piece, 'x', sizeof(piece));
	for (i = 0; i < 300; i++)
		ck_assert_int_eq(pb_file_out_write(&o, piece, sizeof(piece)), 0);
	got = slurp(file, &len);
	ck_assert_str_eq(got, "old");	/* not in place before the commit */
	free(got);
	ck_assert_int_eq(count_entries(tmpdir), 2);
	ck_assert_msg(pb_file_out_commit(&o, 0640, 0, &err) == 0, "%s", err.msg);
	got = slurp(file, &len);
	ck_assert_uint_eq(len, 300 * sizeof(piece));
	free(got);
	ck_assert_int_eq(count_entries(tmpdir), 1);

	/* abort */
	ck_assert_int_eq(pb_file_out_open(&o, file, &err), 0);
	ck_assert_int_eq(pb_file_out_write(&o, "new", 3), 0);
	pb_file_out_abort(&o);
	ck_assert_int_eq(count_entries(tmpdir), 1);

	/* a write that fails: the commit says so, the old file stays */
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old_rl), 0);
	signal(SIGXFSZ, SIG_IGN);
	rl = old_rl;
	rl.rlim_cur = 4096;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	ck_assert_int_eq(pb_file_out_open(&o, file, &err), 0);
	ck_assert_int_eq(pb_file_out_write(&o, piece, sizeof(piece)), 0);
	for (i = 0; i < 10 && pb_file_out_write(&o, piece, sizeof(piece)) == 0; i++)
		;
	ck_assert_int_lt(i, 10);
	ck_assert_int_eq(pb_file_out_write(&o, "x", 1), -1);	/* kept */
	pb_err_clear(&err);
	ck_assert_int_eq(pb_file_out_commit(&o, 0640, 1, &err), -1);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old_rl), 0);
	signal(SIGXFSZ, SIG_DFL);
	ck_assert_int_eq(err.code, EX_IOERR);	/* made, not written: 74, not 73 */
	ck_assert_msg(strstr(err.msg, file) && strstr(err.msg, strerror(EFBIG)), "%s", err.msg);
	got = slurp(file, &len);
	ck_assert_uint_eq(len, 300 * sizeof(piece));
	free(got);
	ck_assert_int_eq(count_entries(tmpdir), 1);
	remove_tmpdir();
}
END_TEST

static Suite *envfile_suite(void)
{
	Suite *s = suite_create("envfile");
	TCase *q = tcase_create("quote"), *r = tcase_create("render"), *w = tcase_create("write");

	tcase_add_loop_test(q, shell_quote_text, 0, N(quotes));
	tcase_add_test(q, shell_quote_uses_len);
	tcase_add_loop_test(q, shell_reads_back_hostile_values, 0, N(hostile));
	tcase_add_test(q, shell_runs_nothing_absolute);
	tcase_add_test(q, systemd_parser_rules);
	tcase_add_loop_test(q, systemd_reads_back_hostile_values, 0, N(hostile));
	tcase_add_test(q, systemd_render_exact);
	tcase_add_test(r, render_exact_and_sorted);
	tcase_add_test(r, render_empty);
	tcase_add_test(r, render_refuses_bad_names);
	tcase_add_test(r, render_many_read_back);
	tcase_add_test(w, atomic_write_content_and_mode);
	tcase_add_test(w, atomic_write_large);
	tcase_add_test(w, envfile_write_mode_0640);
	tcase_add_test(w, atomic_write_missing_dir);
	tcase_add_test(w, atomic_write_failure_leaves_no_temp);
	tcase_add_test(w, atomic_write_unwritable_dir);
	tcase_add_test(w, atomic_write_relative);
	tcase_add_test(w, replace_without_sync);
	tcase_add_test(w, file_out_pieces_and_failures);
	tcase_set_timeout(q, 60);
	tcase_set_timeout(w, 60);
	suite_add_tcase(s, q);
	suite_add_tcase(s, r);
	suite_add_tcase(s, w);
	return s;
}

int main(void)
{
	return pb_suite_run(envfile_suite());
}
