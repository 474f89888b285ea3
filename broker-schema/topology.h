/* topology.h — the topology file of docs/protocol.md §2 and the broker objects it
 * implies (docs/protocol.md §2), shared by apply, verify and export. */
#ifndef PB_TOPOLOGY_H
#define PB_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define TOPO_DEFAULT_MAX_AGE "7D"
#define TOPO_DEFAULT_FLEET_MAX_AGE "2D"
#define TOPO_OBSERVER "provbus-observer"
#define TOPO_HISTORY_POLICY "provbus-history"
#define TOPO_FLEET_POLICY "provbus-fleet"
#define TOPO_DLX "provbus.dlx"
#define TOPO_DEAD "provbus.dead"
#define TOPO_UNROUTED "provbus.unrouted"
#define TOPO_UNROUTED_MAX_LEN 100000

struct topo_federation {
	char *name;
	char **regions;
	size_t n_regions;
};

struct topo_node {
	char *name, *federation, *region;
};

struct topology {
	char *path;
	char *vhost;
	char *history_max_age;		/* e.g. "7D" */
	char *fleet_max_age;		/* e.g. "2D" */
	struct topo_federation *feds;	/* in file order */
	size_t n_feds;
	struct topo_node *nodes;
	size_t n_nodes;
};

/* Loads and validates path. NULL with err: EX_NOINPUT for a missing or
 * unreadable file, EX_DATAERR ("FILE:LINE:COL: message") for a bad one. */
struct topology *topo_load(const char *path, struct pb_err *err);
void topo_free(struct topology *t);

/* 1 if s is a RabbitMQ x-max-age: [0-9]+(Y|M|D|h|m|s), not zero. */
int topo_max_age_ok(const char *s);

/* The broker objects, in the order apply declares them. */
enum topo_kind { TOPO_EXCHANGE, TOPO_QUEUE, TOPO_BINDING };

struct topo_obj {
	enum topo_kind kind;
	char name[160];		/* exchange or queue; a binding's destination queue */
	char type[16];		/* exchange: topic/fanout; queue: classic/stream */
	char source[160];	/* binding: the exchange */
	char key[16];		/* binding: the routing key */
	const char *alternate;	/* exchange: alternate-exchange, or NULL */
	const char *max_age;	/* queue: x-max-age, or NULL (the streams' retention
				 * is a policy: topo_policies) */
	int64_t max_length;	/* queue: x-max-length, or 0 */
};

/* Fills a new array (free()) with every object; returns its length, or
 * (size_t)-1 when out of memory. */
size_t topo_objects(const struct topology *t, struct topo_obj **out);

/* The retention policies of the streams (docs/protocol.md): a policy, not an
 * x-max-age argument, so that apply can change it on a stream that
 * exists. */
struct topo_policy {
	const char *name;	/* provbus-history, provbus-fleet */
	const char *pattern;	/* regular expression over queue names */
	const char *max_age;
};
#define TOPO_N_POLICIES 2
void topo_policies(const struct topology *t, struct topo_policy out[TOPO_N_POLICIES]);

/* "exchange", "queue", "binding" */
const char *topo_kind_name(enum topo_kind k);

#endif
