/* manifest.h — service manifests of provbus-manifest(5) (Chef data_bags/service).
 *
 * Unknown fields are ignored (manifests are shared with Chef). Errors are
 * "FILE:LINE:COLUMN: message" with EX_DATAERR (EX_NOINPUT for a missing
 * file or directory). */
#ifndef PB_MANIFEST_H
#define PB_MANIFEST_H

#include <stddef.h>

#include "config.h"
#include "err.h"

struct pb_kv {
	char *name;
	char *value;
};

struct pb_require {
	char *env;		/* the env var name */
	char *key;		/* the {KEY} it references, or NULL for a literal */
	char *literal;		/* the literal value, or NULL for a reference */
};

struct pb_manifest {
	char *path;
	char *id;
	char *federation;	/* resolved: the manifest's, else the node's */
	struct pb_kv *environment;	/* values as text: 8080 -> "8080", true -> "true" */
	size_t n_environment;
	struct pb_require *requires;	/* sorted by env */
	size_t n_requires;
	struct pb_kv *provides;	/* key -> template, sorted by key */
	size_t n_provides;
	long local_port;	/* -1 when absent */
	int public;		/* default 0 */
};

/* Loads one manifest. default_federation is the node's. */
struct pb_manifest *pb_manifest_load(const char *path, const char *default_federation,
				     struct pb_err *err);
void pb_manifest_free(struct pb_manifest *m);

struct pb_manifest_set {
	struct pb_manifest **items;	/* sorted by id */
	size_t n;
};

/* Loads every "*.json" file of dir (not hidden ones). Two manifests with
 * one id is an error naming both files. An empty or missing dir: see
 * allow_missing (1: an empty set, 0: EX_NOINPUT). */
int pb_manifest_load_dir(const char *dir, const char *default_federation, int allow_missing,
			 struct pb_manifest_set *out, struct pb_err *err);
void pb_manifest_set_release(struct pb_manifest_set *set);
const struct pb_manifest *pb_manifest_set_find(const struct pb_manifest_set *set, const char *id);

/* Expands m's provides templates for this node: {HOST} {PORT} {NODE}
 * {REGION} {FEDERATION} and any environment entry ({PORT} is
 * environment.PORT, else local_port). Fills *out with n_provides pairs
 * (key -> value, sorted by key), to be freed with pb_kv_free_array. An
 * unknown placeholder, an unterminated brace or a value that breaks the
 * value rules is an error naming the file and the key. The node's facts
 * (HOST, NODE, REGION, FEDERATION) win over environment entries of the
 * same name; only PORT comes from the environment first. */
int pb_manifest_expand(const struct pb_manifest *m, const struct pb_config *cfg,
		       struct pb_kv **out, size_t *n_out, struct pb_err *err);

/* The generic expander: lookup(name, ctx) returns the value or NULL for
 * an unknown placeholder. Returns a malloc'd string or NULL with err
 * (EX_DATAERR, "unknown placeholder {X}" / "unterminated {"). "{{" is not
 * special: braces only open placeholders of [A-Z_][A-Z0-9_]*. */
char *pb_template_expand(const char *tmpl, const char *(*lookup)(const char *name, void *ctx),
			 void *ctx, struct pb_err *err);

void pb_kv_free_array(struct pb_kv *kv, size_t n);

/* The keys required by a set of manifests (the {KEY} references),
 * de-duplicated and sorted, as a NULL-terminated array of borrowed
 * pointers into the set; free the array itself with free(). */
const char **pb_manifest_set_required_keys(const struct pb_manifest_set *set, size_t *n);

/* The required env vars of a whole set, each once: items are borrowed
 * pointers into the set (valid while it lives), sorted by env. Two
 * manifests that require one env var with different definitions
 * ({A} vs {B}, {A} vs a literal, two literals) conflict: the consumer
 * cannot satisfy both. (Additive: the lead's header had no such call.) */
struct pb_want_list {
	const struct pb_require **items;
	size_t n;
};

/* Fills *out (release with pb_want_list_release). A conflict is -1 with
 * EX_DATAERR naming the env var, both definitions and both files. */
int pb_manifest_set_wants(const struct pb_manifest_set *set, struct pb_want_list *out,
			  struct pb_err *err);
void pb_want_list_release(struct pb_want_list *wl);

#endif
