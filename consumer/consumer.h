/* consumer.h — provbus-consumer, the daemon of provbus-consumer(1): what its files share.
 *
 * The decisions are not here: they are lib/decide.c, the decision core
 * (pure, the clock and the splay's random draw passed in), which the
 * daemon feeds and obeys. Where each rule lives:
 *   verdicts (duplicate, stale, foreign, applied)   lib/providers.c, through
 *                                                   lib/decide.c
 *   values, "a change", A -> B -> A is no change    lib/decide.c
 *   debounce, one at a time + follow-up, throttle,
 *   splay, retry                                    lib/debounce.c, through
 *                                                   lib/decide.c
 *   pause, startup gate, no run before an owed
 *   catch-up, lock wait (state)                     lib/decide.c
 *   lease expiry (when)                             lib/providers.c, lib/decide.c
 * Every input the core sees is recorded at the instant it sees it (the
 * events' rows, and cs_input: the audit log's inputs table, lib/audit.h),
 * so that `provbus-audit replay` (audit/replay.c) feeds the same core the
 * same inputs and must decide the same runs.
 * The daemon's files are adapters around it. One process, one poll()
 * loop, no threads (daemon.c), sleeping on one timer list (lib/timers.h,
 * enum cs_timer below). The files, by role:
 *   main.c    the command line: run, the control verbs, -n
 *   conf.c    a loaded configuration: config + manifests + what they imply
 *             (required keys, wants, bindings, the core's parameters);
 *             reload compares two of them
 *   broker.c  the AMQP side: connect, declare, bind, consume, frames,
 *             history catch-up (what is owed: the core; kept in meta), acks
 *   ingest.c  deliveries to the core (validation, dedupe lookups, the
 *             seq floor from the log), the batch of audit rows and its
 *             commit, the core's records (expired rows, notes)
 *   runs.c    what the core starts: the runs row, the env and state files,
 *             the lock and the process, its end, notify
 *   status.c  the control socket's verbs and the status document
 *   state.c   the state in one word and systemd's STATUS= (reads only)
 *   acks.c    the acks of committed rows (a failure: c->lost, for broker.c)
 *   seen.c    the bounded cache of recent event ids in front of the audit log
 *   report.c  the fleet reports (presence, run) on a connection of their own
 *
 * Times: wall clock ms (pb_now_ms) for everything audited or decided
 * (runs' start times come back from the audit log after a restart);
 * monotonic ms (pb_mono_ms) for the loop's internal deadlines. The loop
 * sleeps on one timer list in the monotonic clock (lib/timers.h,
 * c->timers: a slot per deadline, enum cs_timer; daemon.c arms it). */
#ifndef PB_CONSUMER_H
#define PB_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include "audit.h"
#include "config.h"
#include "control.h"
#include "debounce.h"
#include "decide.h"
#include "streamend.h"
#include "event.h"
#include "manifest.h"
#include "providers.h"
#include "runner.h"
#include "session.h"
#include "timers.h"

#define CS_BATCH_MAX 500		/* audit rows per transaction */
#define CS_BATCH_DELAY_MS 5		/* commit this long after the first pending row */
#define CS_PREFETCH 2000		/* basic.qos per consumer: 4 batches, so deliveries
					 * keep coming while one commits (one batch left the
					 * consumer idle: docs/BENCHMARKS.md) */
#define CS_COMMIT_RETRY_MS 1000		/* after a failed commit (disk full ...) */
/* the history catch-up's end (lib/streamend.h): the end of the stream
 * as of the start, found by a probe from offset "last"; silence is only
 * a safety net */
#define CS_HISTORY_BURST_GAP_MS 250	/* the probe's burst of the last chunk is over */
#define CS_HISTORY_BURST_MAX_MS 2000	/* ... in a stream too busy to pause */
#define CS_HISTORY_EMPTY_MS 2000	/* no delivery at all: the stream is empty */
#define CS_HISTORY_IDLE_MS 30000	/* the safety net (logged as a warning) */
#define CS_RELOAD_DELAY_MS 250		/* inotify: reload after this quiet */
#define CS_LOCK_RETRY_MS 250		/* a deferred run retries the lock this often */
#define CS_STARTUP_WAIT_MS 30000	/* startup run without a broker after this */
#define CS_STOP_WAIT_MS 60000		/* SIGTERM: wait this long for a running provision */
#define CS_KILL_WAIT_MS 5000		/* then SIGTERM its group, SIGKILL after this */
#define CS_NOTIFY_KILL_MS 2000		/* a notify at a stop: SIGTERM, SIGKILL after this */
#define CS_ENV_VAR_MAX (128 * 1024)	/* the kernel's MAX_ARG_STRLEN: NAME=VALUE + NUL */
#define CS_PRUNE_ROWS 1000		/* audit retention: rows per table and step */
#define CS_PRUNE_PAGES 256		/* ... pages given back to the file system per step */
#define CS_PRUNE_BACKLOG_MS 50		/* next step after a full one (or rows waiting) */
#define CS_PRUNE_HELD_MS 1000		/* ... while a catch-up goes or the log fails */
#define CS_PRUNE_EVERY_MS 600000	/* ... after one that found little */
#define CS_SNAPSHOT_EVERY_MS 86400000	/* a snapshot input when the newest base is older */
#define CS_RPC_TIMEOUT_MS 15000		/* any broker RPC */
#define CS_ERR_LOG_EVERY_MS 60000	/* a repeated failure is logged this often */

/* ---- conf.c ---- */

/* A configuration as loaded: the config file, the manifests and what they
 * imply. Everything borrowed points into cfg or ms. */
struct cs_conf {
	struct pb_config *cfg;
	struct pb_manifest_set ms;
	const char **keys;		/* required keys, sorted (array owned) */
	size_t n_keys;
	struct pb_want *wants;		/* sorted by env, de-duplicated (array owned) */
	size_t n_wants;
	const char **regions;		/* accepted regions (array owned) */
	size_t n_regions;
	struct pb_filter filter;
	char **bindings;		/* routing keys, sorted (owned) */
	size_t n_bindings;
};

/* Loads config and manifests. Errors: EX_NOINPUT, EX_CONFIG (the config,
 * two manifests requiring one env var differently), EX_DATAERR (a
 * manifest). */
int cs_conf_load(const char *path, struct cs_conf *out, struct pb_err *err);
void cs_conf_release(struct cs_conf *c);
/* The debounce parameters of a configuration, and their JSON for the
 * params table (event: "start" or "reload"; a new string). */
void cs_conf_params(const struct cs_conf *c, struct pb_debounce_params *p);
/* ... and everything the decision core needs (pointers into c) */
void cs_conf_decide_params(const struct cs_conf *c, struct pb_decide_params *p);
char *cs_conf_params_json(const struct cs_conf *c, const char *event);
/* 1 when sorted string arrays a and b hold s. */
int cs_strv_has(const char *const *v, size_t n, const char *s);

/* ---- seen.c ---- */

struct cs_seen;
struct cs_seen *cs_seen_new(size_t capacity);
void cs_seen_free(struct cs_seen *s);
int cs_seen_has(const struct cs_seen *s, const char *id);
void cs_seen_add(struct cs_seen *s, const char *id);	/* evicts the oldest when full */
/* the highest seq the audit log holds per (node, service): seen.c */
struct cs_marks;
struct cs_marks *cs_marks_new(void);
void cs_marks_free(struct cs_marks *m);
int cs_marks_get(const struct cs_marks *m, const char *node, const char *service, int64_t *max);
void cs_marks_set(struct cs_marks *m, const char *node, const char *service, int64_t max);
void cs_marks_raise(struct cs_marks *m, const char *node, const char *service, int64_t seq);

/* ---- the daemon ---- */

/* The channels of the broker connection: the node's queue and the
 * history stream. msg[] and acks[] are indexed by channel number. */
#define CS_LIVE_CHANNEL PB_CHANNEL
#define CS_HIST_CHANNEL 2
#define CS_N_CHANNELS 3			/* 0 (the connection) is none */

enum cs_msg_state { MSG_IDLE = 0, MSG_WANT_HEADER, MSG_WANT_BODY };

/* A message being read frame by frame (basic.deliver, header, body). */
struct cs_msg {
	enum cs_msg_state state;
	uint64_t tag;
	int redelivered;
	char consumer_tag[128];
	char exchange[256];
	char routing_key[256];
	char content_type[128];
	int has_content_type;
	char message_id[128];
	char user_id[128];		/* AMQP user_id, "" when absent */
	int has_user_id;
	int has_offset;
	int64_t offset;			/* x-stream-offset (history) */
	int64_t timestamp_s;		/* AMQP timestamp, 0 when absent */
	uint64_t size, got;
	char *body;			/* the first PB_EVENT_MAX_BYTES + 1 bytes */
};

/* Acks owed on one channel of the current connection. */
struct cs_acks {
	uint64_t max_valid;		/* highest tag to ack (multiple) */
	uint64_t *rejects;		/* invalid deliveries, rejected first */
	size_t n_rejects, cap_rejects;
	size_t n_unacked;
};

enum cs_prov_op { PROV_NONE = 0, PROV_UPSERT, PROV_DELETE };

/* One audit row waiting for the batch commit, with what comes with it. */
struct cs_rec {
	struct pb_audit_event row;	/* strings owned, except verdict/source/kind (vocab.h) */
	enum cs_prov_op prov_op;	/* what the row does to the providers table */
	int pv_public, pv_tombstone;
	int64_t pv_seq, pv_expires_at, pv_updated_at;
	const char *in_kind;		/* non-NULL: an inputs row (at: row.received_at) */
	int64_t in_n;
	char *in_text;			/* owned */
};

enum cs_run_state { RUN_NONE = 0, RUN_LOCK_WAIT, RUN_GOING };

struct cs_run {
	enum cs_run_state state;
	int64_t id;
	enum pb_reason reason;
	int64_t queued_at, started_at, lock_since;
	int64_t deferred_ms;
	int deferred_noted;
	struct pb_kv *values;		/* what this run was given */
	size_t n_values;
	char *changed_keys;		/* "A,B" */
	pid_t pid;
	int env_noted;			/* values too long for the environment: said */
};

/* The slots of the loop's timer list (c->timers, lib/timers.h), all in
 * monotonic ms. Set where they change: reload (inotify's delay),
 * watchdog, prune (the retention step). Registered by daemon.c before
 * each sleep from the module that keeps them: the rest. */
enum cs_timer {
	CS_T_IDLE,		/* the memory release once the loop is idle */
	CS_T_REPORT,		/* report.c: presence interval, retries, heartbeats */
	CS_T_CONTROL,		/* a silent control client is dropped */
	CS_T_BROKER,		/* broker.c: reconnect backoff, heartbeats, history end */
	CS_T_FLUSH,		/* ingest.c: the batch commit */
	CS_T_LEASE,		/* the next lease expiry (wall, turned mono) */
	CS_T_RUNS,		/* runs.c: the core's next deadline, lock retry (wall, turned mono) */
	CS_T_STARTUP,		/* the startup run is asked for at the latest then */
	CS_T_STOP,		/* stopping: SIGTERM, then SIGKILL, to the run */
	CS_T_NOTIFY_KILL,	/* stopping: a notify is SIGKILLed */
	CS_T_CHILDREN,		/* runners are polled (no pidfd) */
	CS_T_RELOAD,		/* the reload after inotify */
	CS_T_WATCHDOG,		/* systemd's WATCHDOG=1 */
	CS_T_PRUNE,		/* the next audit retention step */
	CS_T__COUNT
};
extern const char *const cs_timer_names[CS_T__COUNT];

struct consumer {
	const char *config_path;
	struct cs_conf conf;
	char exchange[128], queue[256], stream[192];
	char db_path[4096], sock_path[4096], state_json[4096];

	/* audit log */
	sqlite3 *db;
	struct pb_audit_writer *aw;
	struct cs_rec *pend;
	size_t n_pend, cap_pend;
	int64_t pend_since;		/* mono: first row or delivery not yet flushed */
	int64_t commit_retry_at;	/* mono, 0: none */
	int64_t commit_err_logged;	/* mono */
	int db_failing;

	/* the decision core (lib/decide.h): providers, values, the last good
	 * run's values, debounce, throttle, retry, splay, pause, the startup
	 * and catch-up gates, one run at a time */
	struct pb_decide *core;
	struct cs_seen *seen;
	struct cs_marks *marks;
	uint64_t counts[PB_VERDICT__COUNT];
	uint64_t history_skipped;
	uint64_t unsettled;		/* events fed to the core since the last settle */

	/* broker */
	struct pb_session *sess;
	unsigned gen;			/* connection generation */
	int up;				/* connected and set up */
	int ever_up;
	int64_t reconnect_at;		/* mono, 0: now */
	struct pb_backoff backoff;
	int64_t last_broker_err_log;
	int blocked;
	int consuming;			/* live consumer on channel 1 */
	char live_tag[128];		/* its consumer tag */
	int exchange_missing;		/* the last setup found no provbus.F */
	int in_lost;			/* cs_broker_lost is running */
	int lost;			/* the connection must be dropped (an ack failed) */
	char lost_why[256];
	int requeue_setup;		/* the queue was lost: declare again */
	int64_t last_pump;		/* mono */
	struct cs_msg msg[CS_N_CHANNELS];	/* by channel */
	struct cs_acks acks[CS_N_CHANNELS];
	char **bound;			/* routing keys bound on the queue (= meta bindings) */
	size_t n_bound;

	/* history catch-up (what is owed: the core) */
	int hist_active;		/* consuming the stream on channel 2 */
	int hist_full;			/* this catch-up is the full one */
	char **hist_keys;		/* ... or for these keys */
	size_t n_hist_keys;
	int64_t hist_min_offset;	/* skip offsets below */
	int64_t hist_next_offset;	/* last offset read + 1 */
	int64_t hist_last_msg;		/* mono */
	int64_t hist_started;		/* mono */
	struct pb_stream_end hist_end;	/* where the catch-up ends */
	int hist_cancelled;		/* the broker cancelled it: over at the next check */
	uint64_t hist_read, hist_applied;

	/* runs */
	struct pb_runner *runner, *notifier;
	struct cs_run run;
	int64_t run_retry_at;		/* wall: a run that could not be recorded */
	int64_t deb_next;		/* wall: the pending run is due then */
	int64_t core_next;		/* wall: the core's next deadline */
	int64_t lock_retry_at;		/* wall: a deferred run tries the lock again */
	int64_t run_mark;		/* events.id when the previous run started */
	struct pb_audit_run_info last_run;
	int have_last_run;
	uint64_t runs_by_status[PB_RUN__COUNT];	/* finished runs by enum pb_run_status */
	int64_t notify_run_id;
	int64_t startup_deadline;	/* mono */

	/* the loop */
	struct pb_control *ctl;
	int sigfd, infd;
	int wd_services, wd_config;
	struct pb_timers timers;	/* every deadline of the loop (enum cs_timer) */
	int64_t wd_every;		/* systemd watchdog: its period (0: none) */
	int ready_sent;
	int stopping;
	int64_t stop_deadline, kill_at;	/* mono */
	int term_sent, kill_sent;
	int64_t notify_kill_at;		/* mono: a notify at the stop is SIGKILLed then */
	int notify_killed;
	int done;
	int exit_code;			/* with fatal: exit at once */
	struct pb_err fatal;
	char sd_status[256];
	int64_t started_at;
	struct cs_reporter *rep;	/* report.c */
	char conf_error[1024];		/* why the file on disk does not load; "" when it does */
	int64_t last_ok_at;		/* wall: the last successful run finished */
	int64_t throttled_until;	/* wall: a due run waits for the throttle; 0: none */
	uint64_t pruned;		/* rows pruned since the start */
	int64_t snap_warned;		/* mono: no snapshot possible was last logged (0: never) */
	int snap_wanted;		/* a snapshot input is due: written once the core is at rest */
};

/* daemon.c */
int cs_daemon_run(const char *config_path, struct pb_err *err);
void cs_request_reload(struct consumer *c);

/* broker.c */
void cs_broker_tick(struct consumer *c, int64_t mono);	/* connect when due */
int cs_broker_fd(struct consumer *c);
int cs_broker_buffered(struct consumer *c);
void cs_broker_pump(struct consumer *c);			/* read what arrived */
int64_t cs_broker_next(struct consumer *c, int64_t mono);	/* next deadline, mono */
void cs_broker_lost(struct consumer *c, const char *why);
/* acks.c: the acks owed, sent (after a commit); a failure sets lost */
void cs_acks_flush(struct consumer *c);
void cs_broker_forget_acks(struct consumer *c);
int cs_broker_rebind(struct consumer *c, struct pb_err *err);
void cs_broker_stop_consuming(struct consumer *c);
void cs_broker_close(struct consumer *c);
void cs_msg_release(struct cs_msg *m);
int cs_catchup_load(struct consumer *c, struct pb_err *err);
void cs_catchup_save(struct consumer *c);	/* what the core owes, to the audit log's meta */
void cs_broker_catchup(struct consumer *c);	/* starts an owed catch-up now */
int cs_catchup_owed(const struct consumer *c);	/* 1: a catch-up is owed or going */

/* ingest.c */
void cs_ingest_live(struct consumer *c, struct cs_msg *m);
void cs_ingest_history(struct consumer *c, struct cs_msg *m);
void cs_history_done(struct consumer *c);
int cs_flush(struct consumer *c, int force);	/* commit + ack; 0 or -1 (kept for later) */
int64_t cs_flush_next(struct consumer *c);	/* mono deadline */
void cs_expire(struct consumer *c, int64_t now);
void cs_values_resolve(struct consumer *c, int64_t now);	/* the end of a batch */
void cs_core_record(void *ctx, const struct pb_decide_rec *r);	/* the core's records */
/* An input of the core (lib/audit.h's inputs kinds) at at, queued with the
 * batch after the event rows before it; text (may be NULL) is taken. 0, or
 * -1 when out of memory (logged; the row is lost). */
int cs_input(struct consumer *c, int64_t at, const char *kind, int64_t n, char *text);
char *cs_strv_json(const char *const *v, size_t n);	/* a JSON array; NULL: no memory */
void cs_key_range(const struct consumer *c, const char *key, size_t *first, size_t *end);
void cs_pend_release(struct consumer *c);
int cs_restore(struct consumer *c, struct pb_err *err);
char *cs_kv_json(const struct pb_kv *kv, size_t n);
int cs_kv_from_json(const char *json, struct pb_kv **out, size_t *n);
struct pb_kv *cs_kv_copy(const struct pb_kv *kv, size_t n);
void cs_log_db_error(struct consumer *c, const struct pb_err *e);

/* runs.c */
int cs_runs_init(struct consumer *c, struct pb_err *err);
/* A snapshot input (the core's whole state, like a start's, and what its
 * debounce has pending) when the core is at rest (its startup run
 * requested, no run going or waiting for its lock, its events settled):
 * 1 written, 0 not at rest, -1 out of memory. */
int cs_runs_snapshot(struct consumer *c, int64_t now);
void cs_runs_drive(struct consumer *c, int64_t now);
int64_t cs_runs_next(struct consumer *c);	/* wall deadline */
void cs_runs_child(struct consumer *c);		/* runner/notifier fds or SIGCHLD */
void cs_runs_stop(struct consumer *c, int64_t mono);
void cs_runs_release(struct consumer *c);
void cs_request(struct consumer *c, enum pb_reason why);
void cs_pause(struct consumer *c, int paused);

/* report.c: docs/protocol.md's reports, through the outbox_reports table */
struct cs_reporter;
int cs_report_init(struct consumer *c, struct pb_err *err);	/* queues the start presence */
void cs_report_release(struct consumer *c);
void cs_report_presence(struct consumer *c, const char *reason);
void cs_report_run(struct consumer *c, int64_t finished_at, int exit_status, const char *status);
void cs_report_tick(struct consumer *c, int64_t mono);	/* connect, presence timer, send */
int cs_report_fd(struct consumer *c);			/* -1 when not connected */
int cs_report_buffered(struct consumer *c);
void cs_report_pump(struct consumer *c);		/* confirms, blocked, refusals */
int64_t cs_report_next(struct consumer *c, int64_t mono);	/* mono deadline */
void cs_report_stop(struct consumer *c);		/* presence stopped, sent if it can be */

/* status.c */
char *cs_control_handler(const char *verb, void *ctx);
char *cs_status_json(struct consumer *c);
/* state.c */
void cs_sd_status(struct consumer *c);
const char *cs_state_name(struct consumer *c);
int cs_status_prometheus(const char *json, char **out);

#endif
