/* status.c — the control socket's verbs, the status document (JSON, one
 * line) and its Prometheus form, systemd's STATUS= line.
 *
 * The status never holds a secret of the daemon: the broker URL is the
 * session's redacted one (no password). The values are shown: they are
 * what the node's env file holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consumer.h"
#include "log.h"
#include "pbtime.h"
#include "sdnotify.h"
#include "strv.h"
#include "textesc.h"

static json_t *time_or_null(int64_t ms)
{
	char ts[PB_TIME_BUF];

	if (ms <= 0 || ms == PB_TIME_NEVER)
		return json_null();
	return json_string(pb_time_format(ms, ts));
}

static json_t *strv(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* The env names whose current value differs from the last successful run. */
static json_t *pending_changes(struct consumer *c)
{
	json_t *a = json_array();
	size_t i = 0, j = 0;
	size_t nx, ny;
	const struct pb_kv *x = pb_decide_values(c->core, &nx), *y = pb_decide_ok_values(c->core, &ny);

	while (a && (i < nx || j < ny)) {
		int cmp = i == nx ? 1 : j == ny ? -1 : strcmp(x[i].name, y[j].name);

		if (cmp < 0) {
			json_array_append_new(a, json_string(x[i++].name));
		} else if (cmp > 0) {
			json_array_append_new(a, json_string(y[j++].name));
		} else {
			if (strcmp(x[i].value, y[j].value))
				json_array_append_new(a, json_string(x[i].name));
			i++;
			j++;
		}
	}
	return a;
}

/* The status answer is bounded whatever the number of providers (the
 * control client takes 1 MiB; 40,000 providers of one key made an answer
 * of 2 MB, which failed): each key lists its first CS_STATUS_VALUES_MAX
 * distinct values, providers_total counts them all; a value over
 * CS_STATUS_VALUE_MAX bytes is cut (at a comma when it can), marked with
 * "...", and values_truncated gives its whole length (it is whole in the
 * env file). At most about 64 KB per required key. */
#define CS_STATUS_VALUES_MAX 256
#define CS_STATUS_VALUE_MAX 16384

/* Live provider values of each required key (accepted regions, public
 * only when asked), de-duplicated and sorted: O(k log k) per key; the
 * first CS_STATUS_VALUES_MAX of them, and into totals the count of all. */
static json_t *providers_by_key(struct consumer *c, json_t *totals)
{
	json_t *o = json_object();

	for (size_t k = 0; o && k < c->conf.n_keys; k++) {
		const char **vals;
		size_t first, end, n = 0;
		json_t *arr = json_array();

		cs_key_range(c, c->conf.keys[k], &first, &end);
		vals = malloc((end - first + 1) * sizeof(*vals));
		for (size_t i = first; vals && i < end; i++) {
			const struct pb_provider *pv = pb_providers_at(pb_decide_providers(c->core), i);

			if (pv->tombstone || (c->conf.cfg->consumer.public_only && !pv->public) ||
			    !pb_config_accepts_region(c->conf.cfg, pv->region))
				continue;
			vals[n++] = pv->value;
		}
		size_t distinct = 0;

		if (vals)
			qsort(vals, n, sizeof(*vals), pb_strv_cmp);
		for (size_t i = 0; vals && i < n; i++)
			if (!i || strcmp(vals[i - 1], vals[i])) {
				if (arr && distinct < CS_STATUS_VALUES_MAX)
					json_array_append_new(arr, json_string(vals[i]));
				distinct++;
			}
		free(vals);
		json_object_set_new(o, c->conf.keys[k], arr ? arr : json_array());
		if (totals)
			json_object_set_new(totals, c->conf.keys[k], json_integer((json_int_t)distinct));
	}
	return o;
}

/* {"ok": N, "failed": N, "interrupted": N}: the runs finished since start */
static json_t *runs_by_status(const struct consumer *c)
{
	json_t *o = json_object();

	for (int s = 0; o && s < PB_RUN__COUNT; s++)
		if (pb_run_status_finished(s))
			json_object_set_new(o, pb_run_status_name(s),
					    json_integer((json_int_t)c->runs_by_status[s]));
	return o;
}

char *cs_status_json(struct consumer *c)
{
	json_t *o = json_object(), *counts = json_object(), *vals = json_object(), *running, *last;
	json_t *pend, *totals, *cut;
	int64_t next = PB_TIME_NEVER;
	const struct pb_kv *values;
	size_t n_values;
	char *s, *text;

	if (!o || !counts || !vals) {
		json_decref(o);
		json_decref(counts);
		json_decref(vals);
		return NULL;
	}
	json_object_set_new(o, "node", json_string(c->conf.cfg->node));
	json_object_set_new(o, "federation", json_string(c->conf.cfg->federation));
	json_object_set_new(o, "state", json_string(cs_state_name(c)));
	json_object_set_new(o, "connected", json_boolean(c->up));
	json_object_set_new(o, "broker", c->up ? json_string(pb_session_url(c->sess)) : json_null());
	json_object_set_new(o, "blocked", json_boolean(c->blocked));
	json_object_set_new(o, "queue", json_string(c->queue));
	json_object_set_new(o, "bound_keys", strv(c->conf.keys, c->conf.n_keys));
	json_object_set_new(o, "regions", strv(c->conf.regions, c->conf.n_regions));
	json_object_set_new(o, "paused", json_boolean(pb_decide_paused(c->core)));
	/* pending: a run is queued, or values differ from the last successful
	 * run (retries exhausted, paused, ...): never false beside changes */
	pend = pending_changes(c);
	json_object_set_new(o, "pending", json_boolean(pb_decide_pending(c->core) ||
						       json_array_size(pend) > 0));
	json_object_set_new(o, "pending_changes", pend);
	if (pb_decide_pending(c->core) && c->run.state == RUN_NONE && !pb_decide_paused(c->core))
		next = c->deb_next == PB_TIME_NEVER ? pb_now_ms() : c->deb_next;
	json_object_set_new(o, "next_run_at", time_or_null(next));
	json_object_set_new(o, "throttled_until", time_or_null(c->throttled_until));
	if (c->run.state != RUN_NONE) {
		char ts[PB_TIME_BUF];

		running = json_pack("{s:I,s:s,s:s}", "run_id", (json_int_t)c->run.id, "reason",
				    pb_reason_name(c->run.reason), "started_at",
				    pb_time_format(c->run.started_at, ts));
		json_object_set_new(running, "pid", c->run.state == RUN_GOING && c->run.pid > 0
							    ? json_integer(c->run.pid) : json_null());
		json_object_set_new(running, "waiting_for_lock",
				    json_boolean(c->run.state == RUN_LOCK_WAIT));
	} else {
		running = json_null();
	}
	json_object_set_new(o, "running", running);
	if (c->have_last_run) {
		last = json_pack("{s:I,s:s,s:o,s:o,s:o,s:s}", "id", (json_int_t)c->last_run.id,
				 "reason", c->last_run.reason, "started_at",
				 time_or_null(c->last_run.started_at), "finished_at",
				 time_or_null(c->last_run.finished_at), "exit_status",
				 c->last_run.exit_status >= 0 ? json_integer(c->last_run.exit_status)
							      : json_null(),
				 "status", c->last_run.status);
	} else {
		last = json_null();
	}
	json_object_set_new(o, "last_run", last ? last : json_null());
	json_object_set_new(o, "last_ok_run_at", time_or_null(c->last_ok_at));
	for (int v = 0; v < PB_VERDICT__COUNT; v++)
		json_object_set_new(counts, pb_verdict_name(v), json_integer((json_int_t)c->counts[v]));
	json_object_set_new(counts, "history_skipped", json_integer((json_int_t)c->history_skipped));
	json_object_set_new(o, "counts", counts);
	json_object_set_new(o, "runs", runs_by_status(c));
	totals = json_object();
	json_object_set_new(o, "providers", providers_by_key(c, totals));
	json_object_set_new(o, "providers_total", totals ? totals : json_object());
	values = pb_decide_values(c->core, &n_values);
	cut = json_object();
	for (size_t i = 0; i < n_values; i++) {
		size_t len = strlen(values[i].value), keep = len;

		if (len > CS_STATUS_VALUE_MAX) {
			/* at the last comma before the limit: whole values only */
			keep = CS_STATUS_VALUE_MAX;
			while (keep > CS_STATUS_VALUE_MAX / 2 && values[i].value[keep] != ',')
				keep--;
			if (values[i].value[keep] != ',')	/* not inside a UTF-8 character */
				for (keep = CS_STATUS_VALUE_MAX;
				     keep > 0 && ((unsigned char)values[i].value[keep] & 0xC0) == 0x80;)
					keep--;
			json_object_set_new(vals, values[i].name,
					    json_sprintf("%.*s...", (int)keep, values[i].value));
			if (cut)
				json_object_set_new(cut, values[i].name, json_integer((json_int_t)len));
		} else {
			json_object_set_new(vals, values[i].name, json_string(values[i].value));
		}
	}
	json_object_set_new(o, "values", vals);
	json_object_set_new(o, "values_truncated", cut ? cut : json_object());
	json_object_set_new(o, "audit_failing", json_boolean(c->db_failing));
	/* the file on disk: a broken one leaves the last good one running */
	json_object_set_new(o, "config", json_pack("{s:s,s:b,s:o}", "path", c->config_path,
						   "loads", !c->conf_error[0], "error",
						   c->conf_error[0] ? json_string(c->conf_error)
								    : json_null()));
	json_object_set_new(o, "control_socket", json_string(c->sock_path));
	text = json_dumps(o, JSON_COMPACT);
	/* values restored from an audit log written before the wire rule
	 * may hold DEL or C1 controls, which jansson writes raw */
	s = pb_textesc_json(text);
	free(text);
	json_decref(o);
	return s;
}

static char *ok_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *ok_json(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

char *cs_control_handler(const char *verb, void *ctx)
{
	struct consumer *c = ctx;
	json_t *err;
	char *s;

	if (!strcmp(verb, "status"))
		return cs_status_json(c);
	if (!strcmp(verb, "pause")) {
		cs_pause(c, 1);
		return ok_json("{\"ok\":true,\"paused\":true}");
	}
	if (!strcmp(verb, "resume")) {
		cs_pause(c, 0);
		return ok_json("{\"ok\":true,\"paused\":false,\"queued\":\"resume\"}");
	}
	if (!strcmp(verb, "provision-now")) {
		cs_request(c, PB_REASON_MANUAL);
		return ok_json("{\"ok\":true,\"queued\":\"manual\",\"paused\":%s}",
			       pb_decide_paused(c->core) ? "true" : "false");
	}
	err = json_object();
	if (err)
		json_object_set_new(err, "error", json_sprintf("unknown verb '%.64s'", verb));
	s = err ? json_dumps(err, JSON_COMPACT) : NULL;
	json_decref(err);
	return s;
}

/* systemd's STATUS= line (provbus-consumer(1)): the state (catching up, idle,
 * pending, running, paused, ...), whether the broker is connected, then
 * figures. Sent only when the part before the figures changed. */
/* ---- Prometheus text, from the status JSON (the client converts) ---- */

/* A label value: any control byte or bad UTF-8 as the text \xNN
 * (textesc.h), then backslash and quote escaped as the format wants. */
static void prom_escape(FILE *f, const char *s)
{
	char *t = pb_textesc_dup(s, strlen(s), false);

	for (const char *p = t ? t : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			fputc('\\', f);
		fputc(*p, f);
	}
	free(t);
}

static void prom_metric(FILE *f, const char *name, const char *help, const char *type)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int cs_status_prometheus(const char *text, char **out)
{
	json_t *o = json_loads(text, 0, NULL), *v;
	const char *k;
	size_t len = 0;
	char *buf = NULL;
	FILE *f;
	int64_t ms;
	struct pb_err e = PB_ERR_INIT;

	*out = NULL;
	if (!o || !json_is_object(o) || !(f = open_memstream(&buf, &len))) {
		json_decref(o);
		return -1;
	}
	prom_metric(f, "provbus_connected", "1 when the daemon is connected to the broker", "gauge");
	fprintf(f, "provbus_connected %d\n", json_is_true(json_object_get(o, "connected")));
	prom_metric(f, "provbus_blocked", "1 when the broker blocks publishers (resource alarm)",
		    "gauge");
	fprintf(f, "provbus_blocked %d\n", json_is_true(json_object_get(o, "blocked")));
	prom_metric(f, "provbus_audit_failing", "1 when the audit log cannot be written (nothing is acked)",
		    "gauge");
	fprintf(f, "provbus_audit_failing %d\n", json_is_true(json_object_get(o, "audit_failing")));
	prom_metric(f, "provbus_config_loads", "0 when the configuration file on disk does not load",
		    "gauge");
	fprintf(f, "provbus_config_loads %d\n",
		!json_is_false(json_object_get(json_object_get(o, "config"), "loads")));
	prom_metric(f, "provbus_paused", "1 when runs are paused", "gauge");
	fprintf(f, "provbus_paused %d\n", json_is_true(json_object_get(o, "paused")));
	prom_metric(f, "provbus_pending", "1 when a provision run is pending", "gauge");
	fprintf(f, "provbus_pending %d\n", json_is_true(json_object_get(o, "pending")));
	prom_metric(f, "provbus_running", "1 while a provision run is going", "gauge");
	fprintf(f, "provbus_running %d\n", !json_is_null(json_object_get(o, "running")) &&
					       json_object_get(o, "running") != NULL);
	prom_metric(f, "provbus_events_total", "events judged since the daemon started, by verdict",
		    "counter");
	for (int i = 0; i < PB_VERDICT__COUNT; i++) {
		k = pb_verdict_name(i);
		v = json_object_get(json_object_get(o, "counts"), k);
		fprintf(f, "provbus_events_total{verdict=\"%s\"} %lld\n", k,
			(long long)json_integer_value(v));
	}
	prom_metric(f, "provbus_history_skipped_total",
		    "history messages skipped (not for this node, or seen before)", "counter");
	fprintf(f, "provbus_history_skipped_total %lld\n",
		(long long)json_integer_value(json_object_get(json_object_get(o, "counts"),
							      "history_skipped")));
	prom_metric(f, "provbus_runs_total", "provision runs finished since the daemon started, by status",
		    "counter");
	for (int i = 0; i < PB_RUN__COUNT; i++) {
		if (!pb_run_status_finished(i))
			continue;
		k = pb_run_status_name(i);
		v = json_object_get(json_object_get(o, "runs"), k);
		fprintf(f, "provbus_runs_total{status=\"%s\"} %lld\n", k,
			(long long)json_integer_value(v));
	}
	v = json_object_get(o, "last_run");
	if (json_is_object(v)) {
		json_t *x = json_object_get(v, "exit_status");

		if (json_is_integer(x)) {
			prom_metric(f, "provbus_last_run_exit_status", "exit status of the last run",
				    "gauge");
			fprintf(f, "provbus_last_run_exit_status %lld\n", (long long)json_integer_value(x));
		}
		x = json_object_get(v, json_is_string(json_object_get(v, "finished_at"))
					       ? "finished_at" : "started_at");
		if (json_is_string(x) && pb_time_parse_rfc3339(json_string_value(x), &ms, &e) == 0) {
			prom_metric(f, "provbus_last_run_timestamp_seconds",
				    "when the last run finished (or started)", "gauge");
			fprintf(f, "provbus_last_run_timestamp_seconds %.3f\n", (double)ms / 1000.0);
		}
	}
	v = json_object_get(o, "last_ok_run_at");
	if (json_is_string(v) && pb_time_parse_rfc3339(json_string_value(v), &ms, &e) == 0) {
		prom_metric(f, "provbus_last_successful_run_timestamp_seconds",
			    "when the last successful run finished", "gauge");
		fprintf(f, "provbus_last_successful_run_timestamp_seconds %.3f\n",
			(double)ms / 1000.0);
	}
	prom_metric(f, "provbus_providers",
		    "distinct live values per required key (providers announcing the same value "
		    "count once)", "gauge");
	json_object_foreach(json_object_get(o, "providers"), k, v) {
		fprintf(f, "provbus_providers{key=\"");
		prom_escape(f, k);
		/* the count of all (the list stops at CS_STATUS_VALUES_MAX) */
		json_t *tot = json_object_get(json_object_get(o, "providers_total"), k);

		fprintf(f, "\"} %lld\n", json_is_integer(tot) ? (long long)json_integer_value(tot)
							     : (long long)json_array_size(v));
	}
	fclose(f);
	json_decref(o);
	*out = buf;
	return 0;
}
