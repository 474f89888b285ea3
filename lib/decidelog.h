/* decidelog.h — the decision core's parameters (lib/decide.h) as JSON, for
 * the audit log's inputs rows (lib/audit.h): written by the daemon, read
 * back by `provbus-audit replay`, which feeds the same core again. */
#ifndef PB_DECIDELOG_H
#define PB_DECIDELOG_H

#include <jansson.h>

#include "decide.h"

/* A new JSON object (NULL when out of memory): the debounce parameters
 * under their provbus.json(5) names, "wants" [[env, key|null,
 * literal|null]..], "federation", "keys", "regions", "statics" [[name,
 * value]..], "public_only". */
json_t *pb_decide_params_to_json(const struct pb_decide_params *p);

/* Parameters read back: what they point into is owned here. */
struct pb_decide_params_store;

/* Fills *out from o (a missing member: the provbus.json(5) default or
 * none); *store owns the strings (free with pb_decide_params_store_free).
 * 0, or -1 when out of memory. */
int pb_decide_params_from_json(const json_t *o, struct pb_decide_params *out,
			       struct pb_decide_params_store **store);
void pb_decide_params_store_free(struct pb_decide_params_store *s);

/* The debounce part alone (quiet_ms, max_wait_ms, throttle_runs,
 * throttle_per_s, splay_ms, retry_max, retry_base_ms) from a params row
 * or an input's params; a missing member (or o NULL) is provbus.json(5)'s
 * default. */
void pb_decide_deb_from_json(const json_t *o, struct pb_debounce_params *out);

/* What the debounce has pending (a snapshot input's "pending"), as a new
 * JSON object (NULL when out of memory) and back: a missing member is
 * nothing pending (PB_TIME_NEVER, 0). */
json_t *pb_debounce_pending_to_json(const struct pb_debounce_pending *p);
void pb_debounce_pending_from_json(const json_t *o, struct pb_debounce_pending *out);

#endif
