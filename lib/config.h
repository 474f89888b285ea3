/* config.h — the node configuration of provbus.json(5).
 *
 * pb_config_load() reads and validates the whole file: required fields,
 * name rules, types (every duration an integer), unknown fields (errors:
 * typos must not pass silently). Errors are "FILE:LINE:COLUMN: message"
 * with EX_CONFIG (EX_NOINPUT for a missing file); the position is that of
 * the offending key or value (see jsonpos.h). */
#ifndef PB_CONFIG_H
#define PB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define PB_CONFIG_DEFAULT "/etc/provbus/provbus.json"
#define PB_STATE_DIR_DEFAULT "/var/lib/provbus"

struct pb_tls {
	char *ca, *cert, *key;	/* paths; NULL when not set */
	int verify_hostname;	/* default 1 */
};

struct pb_static {
	char *name;		/* key, ^[A-Z_][A-Z0-9_]{0,127}$ */
	char *value;
};

struct pb_consumer_conf {
	char *env_file;		/* default STATE_DIR/provbus.env */
	char **provision;	/* argv, NULL-terminated; NULL if not set */
	size_t n_provision;
	int64_t quiet_ms;	/* default 2000 */
	int64_t max_wait_ms;	/* default 30000 */
	int throttle_runs;	/* default 6 */
	int64_t throttle_per_s;	/* default 600 */
	int64_t splay_ms;	/* default 0 */
	int retry_max;		/* default 5 */
	int64_t retry_base_ms;	/* default 1000 */
	char *lock_file;	/* default STATE_DIR/provision.lock */
	char **regions;		/* default {node's region}; {"*"} for all */
	size_t n_regions;
	char *queue_type;	/* "quorum" (default) or "classic" */
	int64_t history_window_s;	/* default 86400 */
	int public_only;	/* default 0 */
	int verify_sender;	/* default 1: an event's AMQP user_id must be its node */
	char **notify;		/* argv, NULL-terminated; NULL if not set */
	size_t n_notify;
	int64_t presence_interval_s;	/* default 300 (provbus.json(5)) */
	char *env_format;	/* "shell" (default) or "systemd" */
	int64_t audit_retention_days;	/* default 30; 0 keeps forever */
	struct pb_static *statics;	/* sorted by name */
	size_t n_statics;
};

struct pb_config {
	char *path;		/* the file it came from */
	char *node, *federation, *region;
	char *host;		/* default: first non-loopback IPv4, else 127.0.0.1 */
	char **broker_urls;	/* at least one */
	size_t n_broker_urls;
	char *password_file;	/* NULL when not set */
	struct pb_tls tls;
	int has_tls;
	int heartbeat_s;	/* default 30; 0 disables */
	char *services_dir;	/* default /etc/provbus/services.d */
	char *state_dir;	/* default /var/lib/provbus */
	struct pb_consumer_conf consumer;
};

/* The config path: the -c argument if given, else $PROVBUS_CONFIG, else
 * PB_CONFIG_DEFAULT. */
const char *pb_config_path(const char *arg);

/* Loads and validates path. Returns a new config (pb_config_free) or NULL
 * with err set. */
struct pb_config *pb_config_load(const char *path, struct pb_err *err);
void pb_config_free(struct pb_config *cfg);

/* The state_dir of path for the programs that need nothing else (the
 * control verbs, provbus-audit): from a full load when the file is valid;
 * else the state_dir of the provbus-consumer running this file (its open
 * audit log: lib/running.h); else, leniently, the "state_dir" member of a
 * file with another error
 * (a typo elsewhere must not blind monitoring), else the default. *why is
 * then a new string saying why the file does not load (else NULL).
 * Returns a new string, or NULL with err (EX_NOINPUT: no file; EX_CONFIG:
 * a state_dir that is there but not a usable string). */
char *pb_config_state_dir(const char *path, char **why, struct pb_err *err);

/* 1 if region is accepted by consumer.regions ("*" accepts all). */
int pb_config_accepts_region(const struct pb_config *cfg, const char *region);

/* The static value for key, or NULL. */
const char *pb_config_static(const struct pb_config *cfg, const char *key);

#endif
