/* export.c — the topology as RabbitMQ definitions JSON, for
 * `rabbitmqctl import_definitions FILE` or `load_definitions` at boot
 * (the format of `rabbitmqctl export_definitions`).
 *
 * Importing the same export again must change nothing that works (a
 * broker loads it at every boot; it is imported again after a node is
 * added): so a user's password hash is never empty nor new. With
 * --credentials DIR each user's password is the first line of DIR/USER
 * (created once, 32 random bytes in base64, mode 0600, never
 * overwritten), and its hash is rabbit_password_hashing_sha256:
 * base64(salt ++ SHA-256(salt ++ password)) with a 4-byte salt derived
 * from the password and the user name, so the same file always gives the
 * same hash and the export is byte for byte the same.
 *
 * Each node is a user with no tags and, on its vhost:
 * - configure: its own queue provbus.F.node.NODE (the consumer declares it);
 * - write: its federation's exchange (publishing), its own queue
 *   (queue.bind needs write on the queue), and provbus.dlx (RabbitMQ
 *   checks write on the dead-letter exchange named by a queue declare);
 * - read: its own queue (consuming), provbus.F (queue.bind needs read on
 *   the exchange) and provbus.F.history (the catch-up of provbus-consumer(1));
 * and topic permissions on provbus.F: publish only
 * REGION.(provides|retire).KEY and REGION.(presence|run).NODE of its own
 * region and node; read (bind) any key.
 * The provbus-observer user (provbus-fleet) reads the history and fleet
 * streams of every federation, and nothing else. */
#include "apply.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "vocab.h"

#define PASSWORD_BYTES 32
#define SALT_LEN 4

/* The version written as "rabbit_version"; import_definitions reads it
 * as information only. */
#define EXPORT_RABBIT_VERSION "3.10.0"

static json_t *exchange_json(const struct topology *t, const struct topo_obj *o)
{
	json_t *args = json_object();

	if (o->alternate)
		json_object_set_new(args, "alternate-exchange", json_string(o->alternate));
	return json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:o}", "name", o->name, "vhost", t->vhost,
			 "type", o->type, "durable", 1, "auto_delete", 0, "internal", 0,
			 "arguments", args);
}

static json_t *queue_json(const struct topology *t, const struct topo_obj *o)
{
	json_t *args = json_object();

	if (strcmp(o->type, "classic"))
		json_object_set_new(args, "x-queue-type", json_string(o->type));
	if (o->max_age)
		json_object_set_new(args, "x-max-age", json_string(o->max_age));
	if (o->max_length)
		json_object_set_new(args, "x-max-length", json_integer(o->max_length));
	return json_pack("{s:s, s:s, s:b, s:b, s:o}", "name", o->name, "vhost", t->vhost,
			 "durable", 1, "auto_delete", 0, "arguments", args);
}

static json_t *binding_json(const struct topology *t, const struct topo_obj *o)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{}}", "source", o->source, "vhost", t->vhost,
			 "destination", o->name, "destination_type", "queue", "routing_key", o->key,
			 "arguments");
}

/* name as a regular expression matching just it (names hold no other
 * special character than '.') */
static void re_name(char *buf, size_t size, const char *name)
{
	size_t j = 0;

	for (size_t i = 0; name[i] && j + 3 < size; i++) {
		if (name[i] == '.')
			buf[j++] = '\\';
		buf[j++] = name[i];
	}
	buf[j] = '\0';
}

/* ---- credentials ---- */

/* The first line of path (a password file), or NULL with err. */
static char *read_password(const char *path, struct pb_err *err)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f) {
		pb_err_set(err, EX_NOINPUT, "password file %s: %s", path, strerror(errno));
		return NULL;
	}
	n = getline(&line, &cap, f);
	fclose(f);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n <= 0) {
		pb_err_set(err, EX_DATAERR, "password file %s: the first line is empty: write a password there or remove the file (a new one is made)",
			   path);
		free(line);
		return NULL;
	}
	return line;
}

/* Creates path (O_EXCL, mode 0600) with a new random password. 0 when
 * it exists already; -1 with err. */
static int create_password(const char *path, struct pb_err *err)
{
	unsigned char raw[PASSWORD_BYTES];
	char b64[64];
	int fd, rc = -1;
	size_t len;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST)
		return 0;
	if (fd < 0)
		return pb_err_set(err, EX_CANTCREAT, "password file %s: cannot create it: %s", path,
				  strerror(errno));
	if (pb_random_bytes(raw, sizeof(raw))) {
		pb_err_set(err, EX_OSERR, "password file %s: no random bytes: %s", path, strerror(errno));
		goto out;
	}
	pb_base64_encode(raw, sizeof(raw), b64);
	len = strlen(b64);
	b64[len++] = '\n';
	if (write(fd, b64, len) != (ssize_t)len || fsync(fd)) {
		pb_err_set(err, EX_IOERR, "password file %s: cannot write it: %s", path, strerror(errno));
		unlink(path);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(b64, sizeof(b64));
	close(fd);
	return rc;
}

/* RabbitMQ's rabbit_password_hashing_sha256 hash of password into out
 * (base64 of salt ++ SHA-256(salt ++ password)). The salt is the first
 * bytes of SHA-256(user NUL password): stable for one password file, and
 * two users with the same password still get different salts. */
static void password_hash(const char *user, const char *password, char *out)
{
	size_t ul = strlen(user), pl = strlen(password);
	unsigned char *buf = malloc(ul + 1 + pl + SALT_LEN), digest[PB_SHA256_LEN];
	unsigned char salted[SALT_LEN + PB_SHA256_LEN];

	if (!buf) {
		out[0] = '\0';
		return;
	}
	memcpy(buf, user, ul + 1);
	memcpy(buf + ul + 1, password, pl);
	pb_sha256(buf, ul + 1 + pl, digest);
	memcpy(salted, digest, SALT_LEN);
	memcpy(buf, salted, SALT_LEN);
	memcpy(buf + SALT_LEN, password, pl);
	pb_sha256(buf, SALT_LEN + pl, salted + SALT_LEN);
	pb_base64_encode(salted, sizeof(salted), out);
	explicit_bzero(buf, ul + 1 + pl + SALT_LEN);
	free(buf);
}

/* The hash for user from DIR/user, creating the file when missing. */
static int user_hash(const char *dir, const char *user, char *out, struct pb_err *err)
{
	char path[4096], *pw;

	snprintf(path, sizeof(path), "%s/%s", dir, user);
	if (create_password(path, err))
		return -1;
	if (!(pw = read_password(path, err)))
		return -1;
	password_hash(user, pw, out);
	explicit_bzero(pw, strlen(pw));
	free(pw);
	return out[0] ? 0 : pb_err_set(err, EX_OSERR, "out of memory");
}

/* DIR exists as a directory, or is made (mode 0700). */
static int credentials_dir(const char *dir, struct pb_err *err)
{
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return pb_err_set(err, EX_CANTCREAT, "--credentials %s: cannot create the directory: %s",
				  dir, strerror(errno));
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		return pb_err_set(err, EX_CANTCREAT, "--credentials %s: not a directory", dir);
	return 0;
}

/* ---- users ---- */

static int add_user(json_t *root, const char *name, const char *hash)
{
	return json_array_append_new(json_object_get(root, "users"),
				     json_pack("{s:s, s:s, s:s, s:[]}", "name", name, "password_hash",
					       hash, "hashing_algorithm",
					       "rabbit_password_hashing_sha256", "tags"));
}

static int add_permissions(json_t *root, const struct topology *t, const char *user,
			   const char *conf, const char *write, const char *read)
{
	return json_array_append_new(json_object_get(root, "permissions"),
				     json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", user, "vhost",
					       t->vhost, "configure", conf, "write", write, "read",
					       read));
}

static int add_node(json_t *root, const struct topology *t, const struct topo_node *n,
		    const char *hash)
{
	char exname[160], qname[300], hname[200];
	char queue[600], ex[400], hist[400], dlx[64], conf[700], write[1600], read[1600], topic[400];

	snprintf(exname, sizeof(exname), "provbus.%s", n->federation);
	snprintf(qname, sizeof(qname), "provbus.%s.node.%s", n->federation, n->name);
	snprintf(hname, sizeof(hname), "provbus.%s.history", n->federation);
	re_name(queue, sizeof(queue), qname);
	re_name(ex, sizeof(ex), exname);
	re_name(hist, sizeof(hist), hname);
	re_name(dlx, sizeof(dlx), TOPO_DLX);
	snprintf(conf, sizeof(conf), "^%s$", queue);
	snprintf(write, sizeof(write), "^(%s|%s|%s)$", ex, queue, dlx);
	snprintf(read, sizeof(read), "^(%s|%s|%s)$", queue, ex, hist);
	/* region and node names are [a-z0-9-]: nothing to escape; KEY as
	 * the name rules of provbus-manifest(5) */
	snprintf(topic, sizeof(topic),
		 "^%s\\.((%s)\\.[A-Z_][A-Z0-9_]{0,127}|(presence|run)\\.%s)$",
		 n->region, PB_KIND_ALTERNATION, n->name);
	if (add_user(root, n->name, hash) || add_permissions(root, t, n->name, conf, write, read))
		return -1;
	return json_array_append_new(json_object_get(root, "topic_permissions"),
				     json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", n->name, "vhost",
					       t->vhost, "exchange", exname, "write", topic, "read",
					       ".*"));
}

/* provbus-observer: read on every federation's history and fleet
 * streams; nothing to configure, nothing to write. */
static int add_observer(json_t *root, const struct topology *t, const char *hash)
{
	size_t cap = 64 + t->n_feds * 200, used = 0;
	char *read = malloc(cap);
	int rc;

	if (!read)
		return -1;
	used += (size_t)snprintf(read, cap, "^provbus\\.(");
	for (size_t i = 0; i < t->n_feds; i++)
		used += (size_t)snprintf(read + used, cap - used, "%s%s", i ? "|" : "", t->feds[i].name);
	snprintf(read + used, cap - used, ")\\.(history|fleet)$");
	rc = add_user(root, TOPO_OBSERVER, hash) ||
	     add_permissions(root, t, TOPO_OBSERVER, "^$", "^$", read);
	free(read);
	return rc ? -1 : 0;
}

static int add_policies(json_t *root, const struct topology *t)
{
	struct topo_policy p[TOPO_N_POLICIES];

	topo_policies(t, p);
	for (size_t i = 0; i < TOPO_N_POLICIES; i++)
		if (json_array_append_new(json_object_get(root, "policies"),
					  json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:i}", "vhost",
						    t->vhost, "name", p[i].name, "pattern",
						    p[i].pattern, "apply-to", "queues", "definition",
						    "max-age", p[i].max_age, "priority", 0)))
			return -1;
	return 0;
}

int schema_export(const struct topology *t, const char *credentials, FILE *out,
		  struct pb_err *err)
{
	struct topo_obj *objs = NULL;
	size_t n = topo_objects(t, &objs);
	json_t *root = NULL;
	char hash[128];
	int rc = -1;

	if (n == (size_t)-1)
		goto oom;
	if (credentials && credentials_dir(credentials, err))
		goto out;
	root = json_pack("{s:s, s:s, s:s, s:[], s:[{s:s}], s:[], s:[], s:[], s:[], s:[], s:[], s:[], s:[]}",
			 "rabbit_version", EXPORT_RABBIT_VERSION, "rabbitmq_version", EXPORT_RABBIT_VERSION,
			 "product_name", "RabbitMQ", "users", "vhosts", "name", t->vhost,
			 "permissions", "topic_permissions", "parameters", "global_parameters",
			 "policies", "queues", "exchanges", "bindings");
	if (!root)
		goto oom;
	if (credentials) {
		for (size_t i = 0; i < t->n_nodes; i++) {
			if (user_hash(credentials, t->nodes[i].name, hash, err))
				goto out;
			if (add_node(root, t, &t->nodes[i], hash))
				goto oom;
		}
		if (user_hash(credentials, TOPO_OBSERVER, hash, err))
			goto out;
		if (add_observer(root, t, hash))
			goto oom;
	}
	if (add_policies(root, t))
		goto oom;
	for (size_t i = 0; i < n; i++) {
		const struct topo_obj *o = &objs[i];
		const char *list = o->kind == TOPO_EXCHANGE ? "exchanges" :
				   o->kind == TOPO_QUEUE ? "queues" : "bindings";
		json_t *j = o->kind == TOPO_EXCHANGE ? exchange_json(t, o) :
			    o->kind == TOPO_QUEUE ? queue_json(t, o) : binding_json(t, o);
		if (json_array_append_new(json_object_get(root, list), j))
			goto oom;
	}
	if (json_dumpf(root, out, JSON_INDENT(2)) || fputc('\n', out) == EOF || fflush(out)) {
		pb_err_set(err, EX_IOERR, "writing the definitions: output error");
		goto out;
	}
	rc = 0;
	goto out;
oom:
	pb_err_set(err, EX_OSERR, "out of memory");
out:
	explicit_bzero(hash, sizeof(hash));
	json_decref(root);
	free(objs);
	return rc;
}
