/* report.h — the fleet reports of docs/protocol.md: `presence` and `run`, on the
 * envelope of the version-1 event (v, id, kind, federation, region, node,
 * ts), routed REGION.KIND.NODE to the federation's exchange and from there
 * to the fleet stream provbus.F.fleet.
 *
 * Bodies (every field always present; times RFC 3339 UTC, or null):
 *   presence: state ("running" | "stopped"), reason (start, connect,
 *     interval, reload, pause, resume, stop), version, keys (the required
 *     keys, sorted), regions (accepted; ["*"] for all), public_only,
 *     static ({KEY: SHA-256 hex of the static value}: the value itself may
 *     be a secret and is never sent), paused, connected_since, started_at,
 *     interval_s, ttl_s (the lease: 3 x interval_s; 0 for stopped)
 *   run: run_id, reason, status (ok failed interrupted), exit_status (or
 *     null), queued_at, started_at, finished_at, changed_keys (env names),
 *     digests ({KEY: SHA-256 hex of the value the run was given for KEY,
 *     or null when it had none})
 *
 * The consumer builds them (consumer/report.c), provbus-fleet reads them
 * (fleet/). */
#ifndef PB_REPORT_H
#define PB_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "manifest.h"
#include "providers.h"

#define PB_REPORT_PRESENCE "presence"
#define PB_REPORT_RUN "run"

/* A new report object holding the envelope: v 1, a fresh random id,
 * kind, federation, region, node, ts = now. NULL when out of memory. */
json_t *pb_report_new(const char *kind, const char *federation, const char *region,
		      const char *node, int64_t now);

/* "REGION.KIND.NODE" into buf (size bytes); returns buf. */
char *pb_report_routing_key(const char *region, const char *kind, const char *node, char *buf,
			    size_t size);

/* Parses and checks a report body (len bytes): at most 64 KiB, a JSON
 * object, v 1, kind presence or run, id a string, federation, region and
 * node by the name rules, ts a string; routing_key must be the report's
 * own REGION.KIND.NODE and exchange "provbus." + its federation (either
 * may be NULL: not checked). Returns the object (json_decref it) or NULL
 * with err (EX_DATAERR naming the field). */
json_t *pb_report_parse(const void *body, size_t len, const char *exchange,
			const char *routing_key, struct pb_err *err);

/* The digests of a run: an object {KEY: hex} for each want with a key,
 * of the value its env var has in values (sorted by name), null when the
 * var is absent. NULL when out of memory. */
json_t *pb_report_digests(const struct pb_want *wants, size_t n_wants, const struct pb_kv *values,
			  size_t n_values);

/* A string field of o, or NULL. */
const char *pb_report_str(const json_t *o, const char *field);

#endif
