/* runs.c — provision runs (provbus-consumer(1)): the debounce decides when, this
 * file does the rest: the env file and state.json, the runs row, the lock,
 * the process, its end, the retry, consumer.notify.
 *
 * A run's life: due (pb_debounce_poll) -> begin_run: commit the batch (the
 * run links the event rows since the previous run started), write the env
 * file and state.json, insert the row, pb_debounce_started -> the process
 * (or RUN_LOCK_WAIT while another holds lock_file: retried every 250 ms,
 * audited as deferred) -> finish_run: the row, the debounce, notify.
 * started_at in the row is the debounce's start (what `provbus-audit
 * replay` reproduces); deferred_ms says how much later the process began. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>

#include "consumer.h"
#include "decidelog.h"
#include "envfile.h"
#include "log.h"
#include "pbtime.h"
#include "sdnotify.h"
#include "strv.h"

/* ---- the splay's randomness: an input of the core ----
 * Polled at every turn of the loop, drawn from only when a splay is: a
 * xorshift seeded once by getrandom, not a syscall per turn. */

static uint64_t random64(void)
{
	static uint64_t x;

	if (!x && (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x) || !x))
		x = ((uint64_t)random() << 31) ^ (uint64_t)random() ^ (uint64_t)pb_now_ms() ^ 1;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	return x * 2685821657736338717ull;
}

/* ---- output ---- */

static void run_line(const char *line, size_t len, void *ctx)
{
	struct consumer *c = ctx;

	pb_log_info("run=%lld %.*s", (long long)c->run.id, (int)len, line);
}

static void notify_line(const char *line, size_t len, void *ctx)
{
	struct consumer *c = ctx;

	pb_log_info("notify run=%lld %.*s", (long long)c->notify_run_id, (int)len, line);
}

static void note(struct consumer *c, int64_t run_id, const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void note(struct consumer *c, int64_t run_id, const char *kind, const char *fmt, ...)
{
	struct pb_err e = PB_ERR_INIT;
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (pb_audit_add_note(c->aw, pb_now_ms(), run_id, kind, text, &e) < 0)
		cs_log_db_error(c, &e);
}

/* ---- JSON text of every provider, written out directly ----
 * The start input and state.json list every provider: at 40,000 a
 * jansson tree of them and its dump were most of the daemon's start and
 * of a run's, with the event loop held. */

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
	struct pb_file_out *out;	/* non-NULL: a buffer of cap bytes, written out
					 * to this file whenever it is full */
};

#define SB_OUT_BUF (64 * 1024)

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->out && b->len + n + 1 > b->cap) {
		pb_file_out_write(b->out, b->p, b->len);	/* a failure: at the commit */
		b->len = 0;
		if (n + 1 > b->cap) {
			pb_file_out_write(b->out, s, n);
			return;
		}
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(np = realloc(b->p, cap))) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_int(struct sbuf *b, long long v)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%lld", v);

	sb_put(b, num, (size_t)n);
}

/* A JSON string as jansson's json_dumps writes one (no JSON_ENSURE_ASCII):
 * the quote, the backslash and the C0 controls escaped, the rest as is. */
static void sb_json(struct sbuf *b, const char *s)
{
	const char *run;

	sb_put(b, "\"", 1);
	for (run = s; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[8];

		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		sb_put(b, run, (size_t)(s - run));
		run = s + 1;
		switch (ch) {
		case '"': sb_put(b, "\\\"", 2); break;
		case '\\': sb_put(b, "\\\\", 2); break;
		case '\b': sb_put(b, "\\b", 2); break;
		case '\f': sb_put(b, "\\f", 2); break;
		case '\n': sb_put(b, "\\n", 2); break;
		case '\r': sb_put(b, "\\r", 2); break;
		case '\t': sb_put(b, "\\t", 2); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04X", ch);
			sb_put(b, esc, 6);
		}
	}
	if (run && s > run)
		sb_put(b, run, (size_t)(s - run));
	sb_put(b, "\"", 1);
}

/* ---- init ---- */

/* The providers restored from the log (lib/audit.h's start input), as
 * json_pack("[s,s,s,s,s,s*,i,I,I,I,i]") of each would write them. */
static void providers_json(struct consumer *c, struct sbuf *b)
{
	const struct pb_providers *set = pb_decide_providers(c->core);

	sb_put(b, "[", 1);
	for (size_t i = 0; i < pb_providers_count(set); i++) {
		const struct pb_provider *pv = pb_providers_at(set, i);

		sb_put(b, i ? ",[" : "[", i ? 2 : 1);
		sb_json(b, pv->federation);
		sb_put(b, ",", 1);
		sb_json(b, pv->region);
		sb_put(b, ",", 1);
		sb_json(b, pv->node);
		sb_put(b, ",", 1);
		sb_json(b, pv->service);
		sb_put(b, ",", 1);
		sb_json(b, pv->key);
		sb_put(b, ",", 1);
		if (pv->value)
			sb_json(b, pv->value);
		else
			sb_put(b, "null", 4);
		sb_put(b, ",", 1);
		sb_int(b, pv->public);
		sb_put(b, ",", 1);
		sb_int(b, (long long)pv->seq);
		sb_put(b, ",", 1);
		sb_int(b, (long long)pv->expires_at);
		sb_put(b, ",", 1);
		sb_int(b, (long long)pv->updated_at);
		sb_put(b, ",", 1);
		sb_int(b, pv->tombstone);
		sb_put(b, "]", 1);
	}
	sb_put(b, "]", 1);
}

/* A base input (lib/audit.c): the core's whole state, as at a daemon
 * start (kind "start": its parameters and the state restored into it, the
 * providers being the log's rows before) or later ("snapshot":
 * cs_runs_snapshot; with what the debounce has pending). 0/-1. */
static int base_input(struct consumer *c, int64_t now, const char *kind, const int64_t *starts,
		      int n_starts)
{
	struct pb_decide_params p;
	const char *const *keys = NULL;
	size_t n_keys = 0, n_ok;
	int full = 0;
	const struct pb_kv *ok = pb_decide_ok_values(c->core, &n_ok);
	json_t *o, *st = json_array(), *okj = ok ? json_object() : json_null(), *kj;
	char *text = NULL;
	struct sbuf b = { 0 };

	cs_conf_decide_params(&c->conf, &p);
	if (!pb_decide_owed(c->core, &full, &keys, &n_keys))
		full = 0, n_keys = 0;
	kj = json_array();
	for (int i = 0; st && i < n_starts; i++)
		json_array_append_new(st, json_integer(starts[i]));
	for (size_t i = 0; ok && okj && i < n_ok; i++)
		json_object_set_new(okj, ok[i].name, json_string(ok[i].value));
	for (size_t i = 0; kj && i < n_keys; i++)
		json_array_append_new(kj, json_string(keys[i]));
	o = json_pack("{s:o,s:o*,s:o*,s:i,s:o*,s:i,s:i}", "params", pb_decide_params_to_json(&p),
		      "starts", st, "ok_values", okj, "owed_full", full, "owed_keys", kj, "paused",
		      pb_decide_paused(c->core), "fails_in_row", pb_decide_fails_in_row(c->core));
	if (o && !strcmp(kind, "snapshot")) {
		struct pb_debounce_pending pend;

		pb_debounce_get_pending(pb_decide_debounce(c->core), &pend);
		if (json_object_set_new(o, "pending", pb_debounce_pending_to_json(&pend)) < 0 ||
		    json_object_set_new(o, "splay_ms", json_integer(pb_decide_splay_ms(c->core))) < 0) {
			json_decref(o);
			o = NULL;
		}
	}
	if (o)
		text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return -1;
	/* the object's last member, "providers", spliced in as text */
	sb_put(&b, text, strlen(text) - 1);
	free(text);
	sb_str(&b, ",\"providers\":");
	providers_json(c, &b);
	sb_put(&b, "}", 1);
	if (b.oom) {
		free(b.p);
		return -1;
	}
	return cs_input(c, now, kind, 0, b.p);
}

int cs_runs_snapshot(struct consumer *c, int64_t now)
{
	const struct pb_debounce *d = pb_decide_debounce(c->core);
	int64_t starts[PB_DEBOUNCE_MAX_THROTTLE];
	int n = 0;

	/* what is pending (a change waiting for quiet, a request, a retry, a
	 * run held by the throttle or a pause) goes in the snapshot; a run
	 * going or waiting for its lock, or events not settled, do not */
	if (c->run.state != RUN_NONE || pb_decide_run_state(c->core) != PB_DECIDE_IDLE ||
	    !pb_decide_startup_requested(c->core) || c->unsettled)
		return 0;
	/* the whole throttle ring, oldest first (a reload may widen the window) */
	for (int i = d->n_starts - 1; i >= 0; i--)
		starts[n++] = d->starts[((d->starts_head - 1 - i) % PB_DEBOUNCE_MAX_THROTTLE +
					 PB_DEBOUNCE_MAX_THROTTLE) % PB_DEBOUNCE_MAX_THROTTLE];
	return base_input(c, now, "snapshot", starts, n) < 0 ? -1 : 1;
}

int cs_runs_init(struct consumer *c, struct pb_err *err)
{
	struct pb_debounce_params p;
	int64_t starts[PB_DEBOUNCE_MAX_THROTTLE], now = pb_now_ms();
	char *mark = NULL, *paused = NULL, *params = NULL;
	int n, n_starts, rc = -1;

	c->runner = pb_runner_new(run_line, c);
	c->notifier = pb_runner_new(notify_line, c);
	if (!c->runner || !c->notifier) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	cs_conf_params(&c->conf, &p);
	/* the throttle window survives a restart: read back from the log */
	n_starts = pb_audit_run_starts_since(c->aw, now - p.throttle_per_ms, starts,
					     PB_DEBOUNCE_MAX_THROTTLE, err);
	if (n_starts < 0)
		goto out;
	pb_decide_restore_starts(c->core, starts, n_starts);
	n = pb_audit_interrupt_runs(c->aw, now, err);
	if (n < 0)
		goto out;
	if (n > 0)
		pb_log_warn("%d run(s) were going when the daemon last stopped: marked interrupted", n);
	if ((c->have_last_run = pb_audit_last_run(c->aw, &c->last_run, err)) < 0)
		goto out;
	if (c->have_last_run && !strcmp(c->last_run.status, pb_run_status_name(PB_RUN_OK)))
		c->last_ok_at = c->last_run.finished_at;
	if (pb_audit_meta_get(c->aw, "run_mark", &mark, err) < 0 ||
	    pb_audit_meta_get(c->aw, "paused", &paused, err) < 0)
		goto out;
	c->run_mark = mark ? strtoll(mark, NULL, 10) : 0;
	if (paused && !strcmp(paused, "1")) {
		pb_decide_restore_paused(c->core, 1);
		pb_log_notice("paused (as the daemon was when it stopped): runs are held until resume");
	}
	if (pb_decide_restored(c->core) < 0) {
		pb_err_set(err, EX_OSERR, "computing the values: out of memory");
		goto out;
	}
	if (base_input(c, now, "start", starts, n_starts) < 0) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	if (!(params = cs_conf_params_json(&c->conf, "start")) ||
	    pb_audit_add_params(c->aw, now, params, err) < 0) {
		if (!params)
			pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	c->deb_next = c->core_next = PB_TIME_NEVER;
	c->startup_deadline = pb_mono_ms() + CS_STARTUP_WAIT_MS;
	rc = 0;
out:
	free(mark);
	free(paused);
	free(params);
	return rc;
}

void cs_runs_release(struct consumer *c)
{
	pb_runner_free(c->runner);
	pb_runner_free(c->notifier);
	c->runner = c->notifier = NULL;
	pb_kv_free_array(c->run.values, c->run.n_values);
	free(c->run.changed_keys);
	memset(&c->run, 0, sizeof(c->run));
}

/* ---- requests ---- */

void cs_request(struct consumer *c, enum pb_reason why)
{
	int64_t now = pb_now_ms();

	cs_values_resolve(c, now);
	pb_decide_request(c->core, now, why);
	cs_input(c, now, "request", why, NULL);
	pb_log_info("run requested reason=%s", pb_reason_name(why));
	cs_sd_status(c);
}

/* The core holds the runs and notes the change (provbus-audit replay
 * holds its runs by these notes); the state survives a restart in meta. */
void cs_pause(struct consumer *c, int paused)
{
	struct pb_err e = PB_ERR_INIT;
	int was = pb_decide_paused(c->core);

	if (was != paused)
		pb_log_notice("%s", paused ? "paused: runs are held, events are still received"
					   : "resumed");
	int64_t now = pb_now_ms();

	cs_values_resolve(c, now);
	pb_decide_pause(c->core, now, paused);
	cs_input(c, now, "pause", paused, NULL);
	if (was != paused)
		cs_report_presence(c, paused ? "pause" : "resume");
	if (pb_audit_meta_set(c->aw, "paused", paused ? "1" : NULL, &e) < 0)
		cs_log_db_error(c, &e);
	if (!paused)
		pb_log_info("run requested reason=%s", pb_reason_name(PB_REASON_RESUME));
	cs_sd_status(c);
}

/* ---- the files a run reads ---- */

/* The env names whose value differs between a and b (both sorted), as
 * "A,B" and as a JSON array. */
static void changed_keys(const struct pb_kv *a, size_t na, const struct pb_kv *b, size_t nb,
			 char **csv, char **json)
{
	json_t *arr = json_array();
	size_t i = 0, j = 0, len = 0;
	char *s = NULL;

	while (i < na || j < nb) {
		int cmp = i == na ? 1 : j == nb ? -1 : strcmp(a[i].name, b[j].name);
		const char *name = NULL;

		if (cmp < 0) {
			name = a[i++].name;
		} else if (cmp > 0) {
			name = b[j++].name;
		} else {
			if (strcmp(a[i].value, b[j].value))
				name = a[i].name;
			i++;
			j++;
		}
		if (name && arr)
			json_array_append_new(arr, json_string(name));
	}
	for (i = 0; arr && i < json_array_size(arr); i++)
		len += strlen(json_string_value(json_array_get(arr, i))) + 1;
	if ((s = calloc(len + 1, 1)))
		for (i = 0; arr && i < json_array_size(arr); i++) {
			if (i)
				strcat(s, ",");
			strcat(s, json_string_value(json_array_get(arr, i)));
		}
	*csv = s;
	*json = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	json_decref(arr);
}

/* state_dir/state.json: every live provider, for people and tools. Written
 * before every run, so written out as json_dumps(JSON_INDENT(1) |
 * JSON_SORT_KEYS) would write it, byte for byte, without building a
 * jansson tree (see sbuf above), and streamed to the file through a
 * buffer of SB_OUT_BUF bytes rather than built whole in memory first
 * (9.5 MB at 40,000 providers: growing it was 2/5 of the file's cost,
 * docs/BENCHMARKS-rounds.md, issue 19 round 4). */
static int write_state(struct consumer *c, struct pb_err *err)
{
	const struct pb_providers *prov = pb_decide_providers(c->core);
	char ts[PB_TIME_BUF];
	struct pb_file_out out;
	struct sbuf b = { 0 };
	size_t n = 0;

	if (!(b.p = malloc(SB_OUT_BUF)))
		return pb_err_set(err, EX_OSERR, "%s: out of memory", c->state_json);
	if (pb_file_out_open(&out, c->state_json, err) < 0) {
		free(b.p);
		return -1;
	}
	b.cap = SB_OUT_BUF;
	b.out = &out;
	sb_str(&b, "{\n \"federation\": ");
	sb_json(&b, c->conf.cfg->federation);
	sb_str(&b, ",\n \"node\": ");
	sb_json(&b, c->conf.cfg->node);
	sb_str(&b, ",\n \"providers\": [");
	for (size_t i = 0; i < pb_providers_count(prov) && !b.oom; i++) {
		const struct pb_provider *pv = pb_providers_at(prov, i);

		if (pv->tombstone)
			continue;
		sb_str(&b, n++ ? ",\n  {\n   \"expires_at\": " : "\n  {\n   \"expires_at\": ");
		if (pv->expires_at == PB_TIME_NEVER)
			sb_put(&b, "null", 4);
		else
			sb_json(&b, pb_time_format(pv->expires_at, ts));
		sb_str(&b, ",\n   \"federation\": ");
		sb_json(&b, pv->federation);
		sb_str(&b, ",\n   \"key\": ");
		sb_json(&b, pv->key);
		sb_str(&b, ",\n   \"node\": ");
		sb_json(&b, pv->node);
		sb_str(&b, pv->public ? ",\n   \"public\": true,\n   \"region\": "
				      : ",\n   \"public\": false,\n   \"region\": ");
		sb_json(&b, pv->region);
		sb_str(&b, ",\n   \"seq\": ");
		sb_int(&b, (long long)pv->seq);
		sb_str(&b, ",\n   \"service\": ");
		sb_json(&b, pv->service);
		sb_str(&b, ",\n   \"value\": ");
		sb_json(&b, pv->value);
		sb_str(&b, "\n  }");
	}
	sb_str(&b, n ? "\n ],\n \"written_at\": " : "],\n \"written_at\": ");
	sb_json(&b, pb_time_format(pb_now_ms(), ts));
	sb_str(&b, "\n}");
	pb_file_out_write(&out, b.p, b.len);
	free(b.p);
	return pb_file_out_commit(&out, 0640, 0, err);
}

/* ---- a run ---- */

static void finish_run(struct consumer *c, int64_t now, int exit_status, enum pb_run_status status);

static char *env_entry(const char *name, const char *value)
{
	char *s;

	return asprintf(&s, "%s=%s", name, value) < 0 ? NULL : s;
}

/* Starts the provision process, or waits for the lock. */
static void start_process(struct consumer *c, int64_t now)
{
	const struct pb_consumer_conf *cc = &c->conf.cfg->consumer;
	struct pb_err e = PB_ERR_INIT;
	char **env = calloc(c->run.n_values + 4, sizeof(char *)), idbuf[32];
	size_t n = 0;
	int rc;

	if (!cc->provision) {
		pb_log_notice("run id=%lld: no consumer.provision: the run only wrote the env file",
			      (long long)c->run.id);
		free(env);
		finish_run(c, now, 0, PB_RUN_OK);
		return;
	}
	if (!env)
		goto oom;
	for (size_t i = 0; i < c->run.n_values; i++) {
		const struct pb_kv *kv = &c->run.values[i];

		/* over the kernel's limit for one variable, the exec would fail
		 * (E2BIG) at every run: the value is in the env file only */
		if (strlen(kv->name) + 1 + strlen(kv->value) + 1 > CS_ENV_VAR_MAX) {
			if (!c->run.env_noted) {
				pb_log_warn("run id=%lld: %s is %zu bytes, over the %d KiB a process "
					    "environment variable may hold: left out of the provision's "
					    "environment, read it from the env file %s",
					    (long long)c->run.id, kv->name, strlen(kv->value),
					    CS_ENV_VAR_MAX / 1024, cc->env_file);
				note(c, c->run.id, "env-too-long",
				     "%s (%zu bytes) left out of the environment: it is in %s",
				     kv->name, strlen(kv->value), cc->env_file);
			}
			continue;
		}
		if (!(env[n++] = env_entry(kv->name, kv->value)))
			goto oom;
	}
	c->run.env_noted = 1;	/* a run waiting for the lock comes here again */
	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)c->run.id);
	if (!(env[n++] = env_entry("PROVBUS_ENV_FILE", cc->env_file)) ||
	    !(env[n++] = env_entry("PROVBUS_RUN_ID", idbuf)) ||
	    !(env[n++] = env_entry("PROVBUS_REASON", pb_reason_name(c->run.reason))))
		goto oom;
	rc = pb_runner_start(c->runner, cc->provision, env, cc->lock_file, &e);
	if (rc == PB_RUNNER_STARTED) {
		c->run.deferred_ms = pb_decide_lock_taken(c->core, now);
		cs_input(c, now, "lock-taken", c->run.id, NULL);
		c->run.state = RUN_GOING;
		c->run.pid = pb_runner_pid(c->runner);
		pb_log_notice("run id=%lld reason=%s started pid=%ld changed=%s%s",
			      (long long)c->run.id, pb_reason_name(c->run.reason), (long)c->run.pid,
			      c->run.changed_keys && *c->run.changed_keys ? c->run.changed_keys : "-",
			      c->run.deferred_ms ? " (after waiting for the lock)" : "");
		cs_sd_status(c);
	} else if (rc == PB_RUNNER_LOCKED) {
		pb_decide_lock_wait(c->core, now);
		if (!c->run.deferred_noted) {
			/* only the first wait changes the core */
			cs_input(c, now, "lock-wait", c->run.id, NULL);
			c->run.deferred_noted = 1;
			note(c, c->run.id, "deferred", "lock %s is held by another process: waiting",
			     cc->lock_file);
			pb_log_notice("run id=%lld deferred: lock %s is held by another process",
				      (long long)c->run.id, cc->lock_file);
		}
		c->run.state = RUN_LOCK_WAIT;
		c->lock_retry_at = now + CS_LOCK_RETRY_MS;
	} else {
		pb_log_err("run id=%lld: %s", (long long)c->run.id, e.msg);
		note(c, c->run.id, "error", "%s", e.msg);
		finish_run(c, now, -1, PB_RUN_FAILED);
	}
	pb_strv_free(env, n);
	return;
oom:
	pb_strv_free(env, n);
	pb_log_err("run id=%lld: out of memory", (long long)c->run.id);
	finish_run(c, now, -1, PB_RUN_FAILED);
}

/* Once per episode: the run waits while the audit log cannot be written. */
static void held_log(struct consumer *c)
{
	if (!c->run_retry_at)
		pb_log_warn("run held: the audit log cannot be written (retrying every second)");
}

static void begin_run(struct consumer *c, const struct pb_decide_action *due, int64_t now)
{
	const struct pb_kv *ok, *values;
	size_t n_ok, n_values;
	const struct pb_consumer_conf *cc = &c->conf.cfg->consumer;
	struct pb_err e = PB_ERR_INIT, env_err = PB_ERR_INIT;
	char *csv = NULL, *keys_json = NULL, *before = NULL, *after = NULL, mark[32], splay[128];
	struct pb_audit_run row;
	int64_t last_event, id;
	int env_ok;

	/* the run links the event rows: they must be in the log */
	if (cs_flush(c, 1) < 0 || (last_event = pb_audit_max_event_id(c->aw, &e)) < 0) {
		if (e.code)
			cs_log_db_error(c, &e);
		held_log(c);
		c->run_retry_at = now + 1000;
		return;
	}
	ok = pb_decide_ok_values(c->core, &n_ok);
	values = pb_decide_values(c->core, &n_values);
	changed_keys(ok, n_ok, values, n_values, &csv, &keys_json);
	before = ok ? cs_kv_json(ok, n_ok) : strdup("{}");
	after = cs_kv_json(values, n_values);
	memset(&row, 0, sizeof(row));
	row.reason = pb_reason_name(due->reason);
	row.queued_at = due->queued_at;
	row.started_at = now;
	row.changed_keys = keys_json;
	row.values_before = before;
	row.values_after = after;
	snprintf(mark, sizeof(mark), "%lld", (long long)last_event);
	/* the splay note goes in the run's transaction: a reader never sees
	 * the run without the splay it waited */
	if (cc->splay_ms > 0)
		snprintf(splay, sizeof(splay), "waited a splay of %lld ms (of at most %lld)",
			 (long long)due->splay_ms, (long long)cc->splay_ms);
	if (pb_audit_begin(c->aw, &e) < 0 ||
	    (id = pb_audit_add_run(c->aw, &row, c->run_mark, last_event, &e)) < 0 ||
	    (cc->splay_ms > 0 && pb_audit_add_note(c->aw, pb_now_ms(), id, "splay", splay, &e) < 0) ||
	    /* the core's input: the poll that started it, after its events */
	    pb_audit_add_input(c->aw, now, last_event, "started", id, NULL, &e) < 0 ||
	    pb_audit_meta_set(c->aw, "run_mark", mark, &e) < 0 || pb_audit_commit(c->aw, &e) < 0) {
		pb_audit_rollback(c->aw);
		cs_log_db_error(c, &e);
		held_log(c);
		c->run_retry_at = now + 1000;
		goto out;
	}
	c->run_retry_at = 0;
	if (pb_decide_started(c->core, now) < 0) {
		/* the row is in: it ends at once, and a run is asked for again */
		struct pb_audit_run fin = { .id = id, .finished_at = now, .exit_status = -1 };

		pb_log_err("run id=%lld: out of memory", (long long)id);
		fin.status = pb_run_status_name(PB_RUN_FAILED);
		if (pb_audit_finish_run(c->aw, &fin, &e) < 0)
			cs_log_db_error(c, &e);
		pb_decide_request(c->core, now, PB_REASON_RETRY);
		cs_input(c, now, "request", PB_REASON_RETRY, NULL);
		goto out;
	}
	c->run_mark = last_event;
	memset(&c->run, 0, sizeof(c->run));
	c->run.id = id;
	c->run.reason = due->reason;
	c->run.queued_at = due->queued_at;
	c->run.started_at = now;
	c->run.values = cs_kv_copy(values, n_values);
	c->run.n_values = c->run.values ? n_values : 0;
	c->run.changed_keys = csv;
	csv = NULL;
	c->run.state = RUN_GOING;
	/* the files the run reads: written before the process starts */
	env_ok = pb_envfile_write_as(cc->env_file, c->run.values, c->run.n_values,
				     cc->env_format && !strcmp(cc->env_format, "systemd")
					     ? PB_ENV_SYSTEMD : PB_ENV_SHELL, &env_err) == 0;
	if (env_ok && write_state(c, &e) < 0)
		pb_log_warn("%s", e.msg);
	if (!env_ok) {
		pb_log_err("run id=%lld: %s", (long long)id, env_err.msg);
		note(c, id, "error", "%s", env_err.msg);
		finish_run(c, now, -1, PB_RUN_FAILED);
		goto out;
	}
	start_process(c, now);
out:
	free(csv);
	free(keys_json);
	free(before);
	free(after);
}

/* consumer.notify after a run: never retried, never waited for; one at a
 * time (a notify still going when the next run ends is skipped), and none
 * started once the daemon is stopping: a notify never delays a stop, and
 * one started after cs_runs_stop signalled the last would be waited for
 * without bound (a run that ends during the stop is audited with a skip). */
static void start_notify(struct consumer *c, int exit_status)
{
	const struct pb_consumer_conf *cc = &c->conf.cfg->consumer;
	struct pb_err e = PB_ERR_INIT;
	char id[32], st[16], *env[6] = { 0 };
	int rc;

	if (!cc->notify)
		return;
	if (c->stopping) {
		note(c, c->run.id, "notify-skipped", "the daemon is stopping");
		pb_log_warn("notify run=%lld skipped: the daemon is stopping", (long long)c->run.id);
		return;
	}
	if (pb_runner_running(c->notifier)) {
		note(c, c->run.id, "notify-skipped", "the notify of run %lld is still going",
		     (long long)c->notify_run_id);
		pb_log_warn("notify run=%lld skipped: the notify of run %lld is still going",
			    (long long)c->run.id, (long long)c->notify_run_id);
		return;
	}
	snprintf(id, sizeof(id), "%lld", (long long)c->run.id);
	snprintf(st, sizeof(st), "%d", exit_status);
	env[0] = env_entry("PROVBUS_RUN_ID", id);
	env[1] = env_entry("PROVBUS_REASON", pb_reason_name(c->run.reason));
	env[2] = env_entry("PROVBUS_EXIT_STATUS", st);
	env[3] = env_entry("PROVBUS_CHANGED_KEYS", c->run.changed_keys ? c->run.changed_keys : "");
	env[4] = env_entry("PROVBUS_NODE", c->conf.cfg->node);
	c->notify_run_id = c->run.id;
	if (!env[0] || !env[1] || !env[2] || !env[3] || !env[4])
		pb_err_set(&e, EX_OSERR, "out of memory");
	rc = e.code ? -1 : pb_runner_start(c->notifier, cc->notify, env, NULL, &e);
	if (rc < 0) {
		pb_log_warn("notify run=%lld: %s", (long long)c->run.id, e.msg);
		note(c, c->run.id, "notify-failed", "%s", e.msg);
	}
	for (int i = 0; i < 5; i++)
		free(env[i]);
}

/* The run is over (or could not start): the row, the debounce, notify. */
static void finish_run(struct consumer *c, int64_t now, int exit_status, enum pb_run_status status)
{
	const char *word = pb_run_status_name(status);
	struct pb_err e = PB_ERR_INIT;
	struct pb_audit_run row;
	size_t tail_len = 0;
	const char *tail = c->run.state == RUN_GOING && exit_status >= 0
				   ? pb_runner_tail(c->runner, &tail_len) : NULL;
	int ok = status == PB_RUN_OK;

	memset(&row, 0, sizeof(row));
	row.id = c->run.id;
	row.finished_at = now;
	row.exit_status = exit_status;
	row.status = word;
	row.deferred_ms = c->run.deferred_ms;
	row.tail = tail;
	row.tail_len = tail_len;
	if (pb_audit_finish_run(c->aw, &row, &e) < 0)
		cs_log_db_error(c, &e);
	if (ok)
		c->last_ok_at = now;
	/* the core: the last good values, the retry or its retry-exhausted note */
	cs_values_resolve(c, now);
	pb_decide_finished(c->core, now, status);
	cs_input(c, now, "finished", status, NULL);
	if (!ok && status != PB_RUN_INTERRUPTED) {
		if (pb_decide_retry_at(c->core) == PB_TIME_NEVER)
			pb_log_warn("run id=%lld failed: giving up after %d failed runs in a row "
				    "(until the next change)", (long long)c->run.id,
				    pb_decide_fails_in_row(c->core));
		else
			pb_log_notice("run id=%lld failed: retry in %lld ms", (long long)c->run.id,
				      (long long)(pb_decide_retry_at(c->core) - now));
	}
	c->runs_by_status[status]++;
	c->last_run.id = c->run.id;
	snprintf(c->last_run.reason, sizeof(c->last_run.reason), "%s", pb_reason_name(c->run.reason));
	c->last_run.started_at = c->run.started_at;
	c->last_run.finished_at = now;
	c->last_run.exit_status = exit_status;
	snprintf(c->last_run.status, sizeof(c->last_run.status), "%s", word);
	c->have_last_run = 1;
	pb_log_notice("run id=%lld reason=%s finished status=%s exit=%d duration_ms=%lld deferred_ms=%lld",
		      (long long)c->run.id, pb_reason_name(c->run.reason), word, exit_status,
		      (long long)(now - c->run.started_at), (long long)c->run.deferred_ms);
	if (status != PB_RUN_INTERRUPTED)
		start_notify(c, exit_status);
	cs_report_run(c, now, exit_status, word);
	pb_kv_free_array(c->run.values, c->run.n_values);
	free(c->run.changed_keys);
	memset(&c->run, 0, sizeof(c->run));
	cs_sd_status(c);
}

/* ---- driving ---- */

void cs_runs_drive(struct consumer *c, int64_t now)
{
	const struct pb_consumer_conf *cc = &c->conf.cfg->consumer;
	struct pb_decide_action due;
	int64_t throttled;

	if (c->run.state == RUN_LOCK_WAIT && now >= c->lock_retry_at && !c->stopping)
		start_process(c, now);
	if (c->stopping || c->run.state != RUN_NONE)
		return;
	if (!pb_decide_startup_requested(c->core) && pb_mono_ms() >= c->startup_deadline) {
		pb_log_warn("no broker after %d s: %s", CS_STARTUP_WAIT_MS / 1000,
			    pb_decide_owed(c->core, NULL, NULL, NULL)
				    ? "the startup run waits for the catch-up it owes"
				    : "startup run with the providers from the audit log");
		cs_request(c, PB_REASON_STARTUP);
	}
	if (c->run_retry_at && now < c->run_retry_at)
		return;
	/* the core holds every rule: nothing before the startup request (it
	 * waits for the first catch-up), nothing while a catch-up is owed,
	 * debounce, throttle, splay, retry, pause */
	cs_values_resolve(c, now);	/* the poll's own settle: recorded */
	pb_decide_poll(c->core, now, random64(), &due);
	if (due.splay_drawn)
		cs_input(c, now, "splay", due.splay_ms, NULL);
	c->deb_next = due.run_at;
	c->core_next = due.next_at;
	throttled = due.throttled_until;
	if (throttled && throttled != c->throttled_until) {
		char ts[PB_TIME_BUF];

		/* a start over the limit waits, never dropped: say so, once */
		pb_log_notice("run held by the throttle (%d runs per %lld s) until %s",
			      cc->throttle_runs, (long long)cc->throttle_per_s,
			      pb_time_format(throttled, ts));
	}
	c->throttled_until = throttled;
	if (due.start)
		begin_run(c, &due, now);
}

int64_t cs_runs_next(struct consumer *c)
{
	int64_t next = PB_TIME_NEVER;

	if (c->run.state == RUN_LOCK_WAIT)
		return c->lock_retry_at;
	if (c->run.state != RUN_NONE || c->stopping)
		return next;
	if (c->run_retry_at)
		return c->run_retry_at;
	return c->core_next;
}

void cs_runs_child(struct consumer *c)
{
	if (c->run.state == RUN_GOING && pb_runner_running(c->runner) &&
	    pb_runner_handle(c->runner)) {
		int st = pb_runner_exit_status(c->runner), xe = pb_runner_exec_errno(c->runner);

		if (xe) {
			/* at the default level: "exit=127" alone says nothing */
			pb_log_err("run id=%lld: cannot execute %s: %s (errno %d)", (long long)c->run.id,
				   c->conf.cfg->consumer.provision[0], strerror(xe), xe);
			note(c, c->run.id, "exec-failed", "cannot execute %s: %s (errno %d)",
			     c->conf.cfg->consumer.provision[0], strerror(xe), xe);
		}
		finish_run(c, pb_now_ms(), st, st == 0 ? PB_RUN_OK : PB_RUN_FAILED);
	}
	if (pb_runner_running(c->notifier) && pb_runner_handle(c->notifier)) {
		struct pb_err e = PB_ERR_INIT;
		int st = pb_runner_exit_status(c->notifier);

		if (pb_audit_set_notify_status(c->aw, c->notify_run_id, st, &e) < 0)
			cs_log_db_error(c, &e);
		if (st != 0) {
			size_t len;
			const char *tail = pb_runner_tail(c->notifier, &len);

			pb_log_warn("notify run=%lld exited with status %d", (long long)c->notify_run_id, st);
			note(c, c->notify_run_id, "notify-failed", "exit status %d: %.*s", st,
			     (int)(len > 400 ? 400 : len), tail + (len > 400 ? len - 400 : 0));
		}
	}
}

/* SIGTERM: a run waiting for the lock ends at once (interrupted); a
 * running one gets CS_STOP_WAIT_MS, then SIGTERM to its group, then
 * SIGKILL. A notify never delays the stop (provbus.json(5)): SIGTERM at once,
 * SIGKILL CS_NOTIFY_KILL_MS later. The daemon is done when no child is
 * left. */
void cs_runs_stop(struct consumer *c, int64_t mono)
{
	if (c->run.state == RUN_LOCK_WAIT) {
		note(c, c->run.id, "interrupted", "the daemon stopped while the run waited for the lock");
		finish_run(c, pb_now_ms(), -1, PB_RUN_INTERRUPTED);
	}
	if (pb_runner_running(c->notifier)) {
		if (!c->notify_kill_at) {
			pb_log_notice("stopping: the notify of run %lld still going: SIGTERM",
				      (long long)c->notify_run_id);
			pb_runner_signal(c->notifier, SIGTERM);
			c->notify_kill_at = mono + CS_NOTIFY_KILL_MS;
		} else if (mono >= c->notify_kill_at && !c->notify_killed) {
			pb_log_warn("stopping: the notify of run %lld ignored SIGTERM: SIGKILL",
				    (long long)c->notify_run_id);
			pb_runner_signal(c->notifier, SIGKILL);
			c->notify_killed = 1;
		}
	}
	if (mono >= c->stop_deadline && !c->term_sent) {
		c->term_sent = 1;
		c->kill_at = mono + CS_KILL_WAIT_MS;
		if (pb_runner_running(c->runner)) {
			pb_log_warn("run id=%lld still going after %d s: sending SIGTERM to its group",
				    (long long)c->run.id, CS_STOP_WAIT_MS / 1000);
			pb_runner_signal(c->runner, SIGTERM);
		}
	}
	if (c->term_sent && mono >= c->kill_at && !c->kill_sent) {
		c->kill_sent = 1;
		if (pb_runner_running(c->runner))
			pb_log_warn("run id=%lld still going: SIGKILL", (long long)c->run.id);
		pb_runner_signal(c->runner, SIGKILL);
	}
	if (!pb_runner_running(c->runner) && !pb_runner_running(c->notifier))
		c->done = 1;
}
