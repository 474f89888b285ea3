/* daemon.c — the daemon's one loop: poll() on the broker socket, the
 * control socket, a signalfd, an inotify fd and the children's fds, with
 * the nearest timer as its timeout (provbus-consumer(1)). No threads, no work in
 * signal context.
 *
 * Timers: one list of named deadlines in one clock, the monotonic one
 * (lib/timers.h; c->timers, the slots enum cs_timer in consumer.h), which
 * poll() sleeps on. The reload delay after inotify, the systemd watchdog
 * and the retention step live only there (set where they change); the
 * deadlines other modules keep are registered into it before each
 * sleep (arm_timers: wall-clock ones are turned into monotonic ones
 * there): reconnect (backoff), heartbeat servicing (every heartbeat/4),
 * the history end test (broker.c); the batch commit (5 ms after the
 * first pending row; 1 s retries while the audit log fails) (ingest.c);
 * lease expiries and the decision core's next deadline with the lock
 * retry of a deferred run (lib/decide.c, runs.c); the fleet reports'
 * presence interval, retries and heartbeats (report.c); a silent control
 * client; the startup wait and the stop deadlines; children's polling;
 * the memory release once the loop goes idle. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "consumer.h"
#include "decidelog.h"
#include "log.h"
#include "pbtime.h"
#include "sdnotify.h"
#include "strv.h"
#include "timers.h"

#define MAX_FDS 96
#define CHILD_POLL_MS 1000	/* runners are also polled this often (no pidfd) */
#define IDLE_RELEASE_MS 50	/* memory is given back after this long without work */
/* The seen cache must hold the ids of a batch not committed yet
 * (CS_BATCH_MAX rows); past that it only spares a redelivered id its
 * sqlite lookup: a new id misses it and is looked up either way. 16384
 * slots were 1.3 MB of VmRSS once full (80 bytes a slot). */
#define SEEN_CAPACITY (4 * CS_BATCH_MAX)

/* ---- setup ---- */

static int set_paths(struct consumer *c, struct pb_err *err)
{
	const struct pb_config *cfg = c->conf.cfg;
	int n = 0;

	pb_exchange_name(cfg->federation, c->exchange, sizeof(c->exchange));
	snprintf(c->queue, sizeof(c->queue), "provbus.%s.node.%s", cfg->federation, cfg->node);
	snprintf(c->stream, sizeof(c->stream), "provbus.%s.history", cfg->federation);
	n |= snprintf(c->db_path, sizeof(c->db_path), "%s/audit.db", cfg->state_dir) >=
	     (int)sizeof(c->db_path);
	n |= snprintf(c->sock_path, sizeof(c->sock_path), "%s/control.sock", cfg->state_dir) >=
	     (int)sizeof(c->sock_path);
	n |= snprintf(c->state_json, sizeof(c->state_json), "%s/state.json", cfg->state_dir) >=
	     (int)sizeof(c->state_json);
	if (n)
		return pb_err_set(err, EX_CONFIG, "state_dir %s: path too long", cfg->state_dir);
	return 0;
}

static int make_state_dir(const char *dir, struct pb_err *err)
{
	struct stat st;

	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return pb_err_set(err, EX_CONFIG, "state_dir %s is not a directory", dir);
		return 0;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return pb_err_set(err, EX_CANTCREAT, "state_dir %s: %s: create it or fix state_dir",
				  dir, strerror(errno));
	return 0;
}

static int open_signals(struct consumer *c, struct pb_err *err)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
	    (c->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return pb_err_set(err, EX_OSERR, "signalfd: %s", strerror(errno));
	return 0;
}

static void watch_files(struct consumer *c)
{
	char *copy = strdup(c->config_path), *dir;
	uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE;

	if (c->infd < 0)
		c->infd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (c->infd < 0) {
		pb_log_warn("inotify: %s: reload with SIGHUP", strerror(errno));
		free(copy);
		return;
	}
	if (c->wd_services >= 0)
		inotify_rm_watch(c->infd, c->wd_services);
	if (c->wd_config >= 0 && c->wd_config != c->wd_services)
		inotify_rm_watch(c->infd, c->wd_config);
	c->wd_services = inotify_add_watch(c->infd, c->conf.cfg->services_dir, mask);
	if (c->wd_services < 0)
		pb_log_info("services_dir %s: cannot watch it (%s): reload with SIGHUP",
			    c->conf.cfg->services_dir, strerror(errno));
	dir = copy ? dirname(copy) : NULL;
	c->wd_config = dir ? inotify_add_watch(c->infd, dir, mask) : -1;
	if (c->wd_config < 0)
		pb_log_info("%s: cannot watch its directory: reload with SIGHUP", c->config_path);
	free(copy);
}

/* ---- reload ---- */

static int same_strv(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]))
			return 0;
	return 1;
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static int broker_changed(const struct pb_config *a, const struct pb_config *b)
{
	return !same_strv(a->broker_urls, a->n_broker_urls, b->broker_urls, b->n_broker_urls) ||
	       !same_str(a->password_file, b->password_file) || a->heartbeat_s != b->heartbeat_s ||
	       a->has_tls != b->has_tls || !same_str(a->tls.ca, b->tls.ca) ||
	       !same_str(a->tls.cert, b->tls.cert) || !same_str(a->tls.key, b->tls.key) ||
	       a->tls.verify_hostname != b->tls.verify_hostname;
}

static struct pb_session *new_session(const struct pb_config *cfg)
{
	struct pb_session_opts o;
	char name[128];

	snprintf(name, sizeof(name), "provbus-consumer %s", cfg->node);
	pb_session_opts_from_config(&o, cfg, name);
	return pb_session_new(&o);
}

/* Keys of n that o did not require in the regions n accepts (all of n's
 * when the regions grew). NULL-terminated borrowed array; free() it. */
static const char **added_keys(const struct cs_conf *o, const struct cs_conf *n, size_t *count)
{
	const char **v = calloc(n->n_keys + 1, sizeof(*v));
	int regions_grew = 0;

	*count = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < n->n_regions; i++)
		if (!cs_strv_has(o->regions, o->n_regions, n->regions[i]) &&
		    !cs_strv_has(o->regions, o->n_regions, "*"))
			regions_grew = 1;
	for (size_t i = 0; i < n->n_keys; i++)
		if (regions_grew || !cs_strv_has(o->keys, o->n_keys, n->keys[i]))
			v[(*count)++] = n->keys[i];
	return v;
}

/* The reload as the core saw it: an inputs row (lib/audit.h). */
static void reload_input(struct consumer *c, int64_t now, const struct pb_decide_params *p,
			 const char **added, size_t n_added)
{
	json_t *o = json_object(), *a = json_array();
	char *text = NULL;

	for (size_t i = 0; a && i < n_added; i++)
		json_array_append_new(a, json_string(added[i]));
	if (o && a && !json_object_set_new(o, "params", pb_decide_params_to_json(p)) &&
	    !json_object_set_new(o, "added", a))
		text = json_dumps(o, JSON_COMPACT);
	else
		json_decref(a);
	json_decref(o);
	if (!text)
		pb_log_err("reload: out of memory for its audit row: replay will miss it");
	cs_input(c, now, "reload", 0, text);
}

static void reload(struct consumer *c, const char *why)
{
	struct pb_err err = PB_ERR_INIT;
	struct pb_decide_params p;
	struct cs_conf n, old;
	const char **added = NULL;
	size_t n_added = 0, i, dropped = 0, n_new = 0;
	int64_t now = pb_now_ms();
	char *params = NULL;

	if (cs_conf_load(c->config_path, &n, &err) < 0) {
		pb_log_err("reload (%s) failed: %s; the running configuration stays", why, err.msg);
		snprintf(c->conf_error, sizeof(c->conf_error), "%s", err.msg);
		if (pb_audit_add_note(c->aw, now, 0, "reload-failed", err.msg, &err) < 0)
			cs_log_db_error(c, &err);
		return;
	}
	if (strcmp(n.cfg->node, c->conf.cfg->node) || strcmp(n.cfg->federation, c->conf.cfg->federation) ||
	    strcmp(n.cfg->state_dir, c->conf.cfg->state_dir)) {
		pb_log_err("reload (%s) failed: %s: node, federation and state_dir change only with a "
			   "restart; the running configuration stays", why, c->config_path);
		snprintf(c->conf_error, sizeof(c->conf_error),
			 "%s: node, federation and state_dir change only with a restart",
			 c->config_path);
		cs_conf_release(&n);
		return;
	}
	c->conf_error[0] = '\0';
	added = added_keys(&c->conf, &n, &n_added);
	for (i = 0; i < c->conf.n_keys; i++)
		dropped += !cs_strv_has(n.keys, n.n_keys, c->conf.keys[i]);
	/* added: keys new to the configuration; catch_up: keys whose history
	 * is read again (all of them when the accepted regions grew) */
	for (i = 0; i < n.n_keys; i++)
		n_new += !cs_strv_has(c->conf.keys, c->conf.n_keys, n.keys[i]);
	old = c->conf;
	c->conf = n;
	cs_conf_decide_params(&c->conf, &p);
	/* the core: the keys added owe their catch-up before anything is
	 * recomputed (no run with part of a new key's history), then the
	 * values with the new configuration */
	cs_values_resolve(c, now);
	if (pb_decide_reload(c->core, now, &p, added, n_added) < 0)
		pb_log_err("reload: out of memory noting the keys to catch up: catching up all");
	reload_input(c, now, &p, added, n_added);
	cs_catchup_save(c);
	if ((params = cs_conf_params_json(&c->conf, "reload")) &&
	    pb_audit_add_params(c->aw, now, params, &err) < 0)
		cs_log_db_error(c, &err);
	if (broker_changed(old.cfg, c->conf.cfg)) {
		struct pb_session *s = new_session(c->conf.cfg);

		if (!s) {
			pb_log_err("reload: out of memory for the new broker session: keeping the old one");
		} else {
			pb_log_notice("reload: the broker settings changed: reconnecting");
			cs_broker_lost(c, "the broker settings changed");
			pb_session_free(c->sess);
			c->sess = s;
			c->reconnect_at = 0;
		}
	}
	if (c->up && cs_broker_rebind(c, &err) < 0)
		cs_broker_lost(c, err.msg);
	if (c->up)
		cs_broker_catchup(c);
	if (strcmp(old.cfg->services_dir, c->conf.cfg->services_dir))
		watch_files(c);
	pb_log_notice("reloaded (%s): keys=%zu added=%zu dropped=%zu catch_up=%zu regions=%zu "
		      "bindings=%zu manifests=%zu", why, c->conf.n_keys, n_new, dropped, n_added,
		      c->conf.n_regions, c->conf.n_bindings, c->conf.ms.n);
	{
		char text[256];

		snprintf(text, sizeof(text),
			 "%s: keys=%zu added=%zu dropped=%zu catch_up=%zu regions=%zu manifests=%zu",
			 why, c->conf.n_keys, n_new, dropped, n_added, c->conf.n_regions,
			 c->conf.ms.n);
		if (pb_audit_add_note(c->aw, now, 0, "reload", text, &err) < 0)
			cs_log_db_error(c, &err);
	}
	free(added);
	free(params);
	cs_conf_release(&old);
	cs_report_presence(c, "reload");
	cs_sd_status(c);
}

void cs_request_reload(struct consumer *c)
{
	pb_timers_set(&c->timers, CS_T_RELOAD, pb_mono_ms() + CS_RELOAD_DELAY_MS);
}

/* ---- events of the loop ---- */

static void begin_stop(struct consumer *c, const char *why)
{
	struct pb_err e = PB_ERR_INIT;

	if (c->stopping) {
		pb_log_notice("%s: already stopping (waiting for the run)", why);
		return;
	}
	c->stopping = 1;
	pb_log_notice("%s: stopping", why);
	/* from here no run starts: provbus-audit replay reads the daemon as
	 * down from this note */
	if (pb_audit_add_note(c->aw, pb_now_ms(), 0, "stop", why, &e) < 0)
		cs_log_db_error(c, &e);
	pb_sd_notify("STOPPING=1");
	cs_broker_stop_consuming(c);
	cs_flush(c, 1);
	c->stop_deadline = pb_mono_ms() + CS_STOP_WAIT_MS;
	if (c->run.state == RUN_GOING)
		pb_log_notice("waiting up to %d s for run id=%lld", CS_STOP_WAIT_MS / 1000,
			      (long long)c->run.id);
	cs_sd_status(c);
}

static void on_signals(struct consumer *c)
{
	struct signalfd_siginfo si;

	while (read(c->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
			begin_stop(c, "SIGTERM");
			break;
		case SIGINT:
			begin_stop(c, "SIGINT");
			break;
		case SIGHUP:
			reload(c, "SIGHUP");
			break;
		case SIGUSR1:
			cs_request(c, PB_REASON_MANUAL);
			break;
		case SIGCHLD:
			cs_runs_child(c);
			break;
		}
	}
}

static int is_manifest_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 5 && !strcmp(name + n - 5, ".json");
}

static void on_inotify(struct consumer *c)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *base = strrchr(c->config_path, '/');
	ssize_t n;

	base = base ? base + 1 : c->config_path;
	while ((n = read(c->infd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->len && ((ev->wd == c->wd_services && is_manifest_name(ev->name)) ||
					(ev->wd == c->wd_config && !strcmp(ev->name, base)))) {
				pb_log_debug("inotify name=%s mask=0x%x", ev->name, ev->mask);
				cs_request_reload(c);
			}
			p += sizeof(*ev) + ev->len;
		}
	}
}

/* ---- memory while idle ----
 *
 * Most of an idle daemon's VmRSS is file pages of the program and its
 * libraries, the rest anonymous (/proc/PID/smaps; the figures are in
 * docs/BENCHMARKS.md, "Figures behind choices in the code"). What grows
 * with traffic is anonymous:
 * sqlite's page cache, the free memory glibc keeps, the batch array, the
 * stack pages a run's output or a catch-up touched (and rabbitmq-c's
 * frame pool: see RELEASE_FRAMES in broker.c).
 *
 * So once the loop has had nothing to do for IDLE_RELEASE_MS it gives
 * back, once per busy spell: sqlite's unused cache pages, the batch array,
 * glibc's free pages (malloc_trim) and the stack below the loop's frame.
 * Nothing here changes what the daemon does; the next event pays some
 * minor page faults. The file pages
 * of the program and its libraries stay: they are the page cache's,
 * shared with every other process that maps the same libraries, and
 * unmapping them would only move them out of this process's VmRSS, not
 * free any memory. So that a trickle of events cannot make releases a
 * load, they spend at most 1% of a core: a budget that fills by
 * RELEASE_SHARE of the time passed, up to RELEASE_BURST_US (the few
 * releases of a start-up: catch-up, startup run, first status). */

#define RELEASE_SHARE 100		/* 1/100 of the time */
#define RELEASE_BURST_US 50000

struct idle {
	uint64_t work;		/* work_done() when last seen */
	int64_t since;		/* mono ms: the last work */
	int released;		/* memory given back since then */
	int64_t budget_us;	/* CPU time releases may spend (< 0: overspent) */
	int64_t budget_at;	/* mono ms: budget_us as of then */
};

/* CPU time (µs) of this thread: what a release costs the machine (its
 * wall time on a loaded machine is mostly waiting for a core). */
static int64_t cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A number that moves whenever the daemon did work: events judged, runs
 * started or ended. */
static uint64_t work_done(const struct consumer *c)
{
	uint64_t n = c->history_skipped + (uint64_t)c->run.state + (uint64_t)c->run.id;

	for (int v = 0; v < PB_VERDICT__COUNT; v++)
		n += c->counts[v];
	for (int i = 0; i < 4; i++)
		n += c->runs_by_status[i];
	return n;
}

/* The [stack] mapping's bounds from /proc/self/maps; 0 when not found. */
static int stack_bounds(uintptr_t *lo, uintptr_t *hi)
{
	char buf[2048];
	size_t have = 0;
	ssize_t n;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), found = 0;

	if (fd < 0)
		return 0;
	while (!found && (n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		char *line = buf, *nl;

		have += (size_t)n;
		buf[have] = '\0';
		while (!found && (nl = strchr(line, '\n'))) {
			*nl = '\0';
			if (nl - line > 7 && !strcmp(nl - 7, "[stack]"))
				found = sscanf(line, "%" SCNxPTR "-%" SCNxPTR, lo, hi) == 2;
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
		if (have == sizeof(buf) - 1)
			have = 0;	/* a line longer than the buffer: not [stack]'s */
	}
	close(fd);
	return found;
}

/* The main thread's stack keeps every page it ever touched (a run's
 * output is read through a 64 KiB buffer, runner.c read_output; a
 * catch-up or a reload goes deep): below this frame all of it is dead,
 * and the next call that goes that deep gets zeroed pages. Two pages
 * under this frame stay (the red zone and madvise's own call). */
static void release_stack(void)
{
	uintptr_t lo, hi, page = (uintptr_t)sysconf(_SC_PAGESIZE), here = (uintptr_t)&lo;
	uintptr_t top = (here & ~(page - 1)) - 2 * page;

	/* lo <= here: this thread runs on [stack] (under valgrind it does not) */
	if (stack_bounds(&lo, &hi) && lo <= here && here < hi && top > lo)
		madvise((void *)lo, top - lo, MADV_DONTNEED);
}

static void release_memory(struct consumer *c, struct idle *idle, int64_t mono)
{
	int64_t t0 = cpu_us(), us;

	if (c->db)
		sqlite3_db_release_memory(c->db);
	if (!c->n_pend)
		cs_pend_release(c);	/* the batch array (grown to a batch) */
	malloc_trim(0);
	release_stack();
	us = cpu_us() - t0;
	idle->released = 1;
	idle->budget_us += (mono - idle->budget_at) * 1000 / RELEASE_SHARE;
	if (idle->budget_us > RELEASE_BURST_US)
		idle->budget_us = RELEASE_BURST_US;
	idle->budget_us -= us;
	idle->budget_at = mono;
	pb_log_debug("idle: memory released in %lld us of CPU", (long long)us);
}

/* After the loop's events: any work starts a new busy spell. A control
 * request (status ...) is not one, but building its answer allocates, so
 * the heap is trimmed again after it when the daemon was idle. */
static void idle_note(struct consumer *c, struct idle *idle, int64_t mono, int control)
{
	uint64_t w = work_done(c);

	if (w != idle->work || c->n_pend || c->pend_since || cs_broker_buffered(c)) {
		idle->work = w;
		idle->since = mono;
		idle->released = 0;
	} else if (control) {
		idle->released = 0;
	}
}

/* The mono deadline of the next release, INT64_MAX for none. */
static int64_t idle_next(const struct consumer *c, const struct idle *idle)
{
	int64_t at = idle->since + IDLE_RELEASE_MS, paid;

	if (idle->released || c->n_pend || c->pend_since)
		return INT64_MAX;
	/* when an overspent budget is back to 0 */
	paid = idle->budget_at + (-idle->budget_us * RELEASE_SHARE + 999) / 1000;
	return idle->budget_us < 0 && paid > at ? paid : at;
}

static void idle_tick(struct consumer *c, struct idle *idle, int64_t mono)
{
	if (mono >= idle_next(c, idle))
		release_memory(c, idle, mono);
}

/* ---- the loop ---- */

_Static_assert(CS_T__COUNT <= PB_TIMERS_MAX, "the timer list holds every slot");

const char *const cs_timer_names[CS_T__COUNT] = {
	[CS_T_IDLE] = "idle-release", [CS_T_REPORT] = "report", [CS_T_CONTROL] = "control",
	[CS_T_BROKER] = "broker", [CS_T_FLUSH] = "flush", [CS_T_LEASE] = "lease",
	[CS_T_RUNS] = "runs", [CS_T_STARTUP] = "startup", [CS_T_STOP] = "stop",
	[CS_T_NOTIFY_KILL] = "notify-kill", [CS_T_CHILDREN] = "children", [CS_T_RELOAD] = "reload",
	[CS_T_WATCHDOG] = "watchdog", [CS_T_PRUNE] = "prune",
};

/* Registers into the timer list every deadline kept elsewhere (the
 * loop's own, c->timers' reload, watchdog and retention slots, are set
 * where they change), as of now (wall) and mono. */
static void arm_timers(struct consumer *c, const struct idle *idle, int64_t now, int64_t mono)
{
	struct pb_timers *t = &c->timers;
	int ms;

	pb_timers_set(t, CS_T_IDLE, idle_next(c, idle));
	pb_timers_set(t, CS_T_REPORT, cs_report_next(c, mono));
	pb_timers_set(t, CS_T_CONTROL, c->ctl && (ms = pb_control_timeout_ms(c->ctl, mono)) >= 0
						? mono + ms	/* a silent client is dropped on time */
						: PB_TIMER_NONE);
	pb_timers_set(t, CS_T_BROKER, cs_broker_next(c, mono));
	pb_timers_set(t, CS_T_FLUSH, cs_flush_next(c));
	pb_timers_set_wall(t, CS_T_LEASE, pb_providers_next_expiry(pb_decide_providers(c->core)), now,
			   mono);
	pb_timers_set_wall(t, CS_T_RUNS, cs_runs_next(c), now, mono);
	pb_timers_set(t, CS_T_STARTUP, pb_decide_startup_requested(c->core) ? PB_TIMER_NONE
									    : c->startup_deadline);
	pb_timers_set(t, CS_T_STOP, !c->stopping ? PB_TIMER_NONE
				    : c->term_sent ? c->kill_at : c->stop_deadline);
	pb_timers_set(t, CS_T_NOTIFY_KILL, c->stopping && c->notify_kill_at && !c->notify_killed
						   ? c->notify_kill_at : PB_TIMER_NONE);
	pb_timers_set(t, CS_T_CHILDREN,
		      pb_runner_running(c->runner) || pb_runner_running(c->notifier)
			      ? mono + CHILD_POLL_MS : PB_TIMER_NONE);
}

static int poll_timeout(struct consumer *c, const struct idle *idle, int64_t now, int64_t mono)
{
	if (cs_broker_buffered(c) || cs_report_buffered(c))
		return 0;	/* frames already read: no deadline, work now */
	arm_timers(c, idle, now, mono);
	return pb_timers_timeout_ms(&c->timers, mono, 60000);
}

/* A snapshot input (cs_runs_snapshot) when the core is at rest. */
static int snapshot(struct consumer *c, int64_t now)
{
	int r = cs_runs_snapshot(c, now);

	if (r > 0) {
		c->snap_wanted = 0;
		pb_log_info("audit retention: the decision core's state written (a snapshot input:"
			    " pruning and replay can begin there)");
	}
	return r;
}

/* consumer.audit_retention_days: a small step when the loop has nothing
 * else to do (no rows waiting for a commit, no catch-up, no run starting),
 * steps back to back while there is a backlog, then every few minutes. */
static void prune(struct consumer *c, int64_t now, int64_t mono)
{
	const struct pb_consumer_conf *cc = &c->conf.cfg->consumer;
	struct pb_audit_prune o;
	struct pb_err e = PB_ERR_INIT;
	int64_t n, base;

	if (cc->audit_retention_days <= 0) {
		pb_timers_clear(&c->timers, CS_T_PRUNE);
		c->snap_wanted = 0;
		return;
	}
	if (pb_timers_at(&c->timers, CS_T_PRUNE) == PB_TIMER_NONE)
		pb_timers_set(&c->timers, CS_T_PRUNE, mono);	/* retention turned on by a reload */
	if (!pb_timers_due(&c->timers, CS_T_PRUNE, mono))
		return;
	if (c->pend_since || c->n_pend || c->hist_active || c->db_failing || c->stopping) {
		/* held back: looked at again later (a due timer left as it is
		 * made the loop's timeout 0: it spun for as long as this lasted) */
		pb_timers_set(&c->timers, CS_T_PRUNE,
			      mono + (c->hist_active || c->db_failing ? CS_PRUNE_HELD_MS
								    : CS_PRUNE_BACKLOG_MS));
		return;
	}
	/* pruning goes up to a base (lib/audit.c): a daemon that never
	 * restarts writes one a day, when its core is at rest (else as soon
	 * as it is: timers()); it is committed with the next batch, before
	 * the step */
	base = pb_audit_last_base_at(c->db);
	if (base >= 0 && now - base >= CS_SNAPSHOT_EVERY_MS) {
		int r = snapshot(c, now);

		if (r > 0)
			return;
		c->snap_wanted = 1;	/* tried again whenever the loop is idle */
		if (now - base >= 2 * CS_SNAPSHOT_EVERY_MS &&
		    (!c->snap_warned || mono - c->snap_warned >= CS_SNAPSHOT_EVERY_MS)) {
			char ts[PB_TIME_BUF];

			c->snap_warned = mono;
			pb_log_warn("audit retention: no snapshot input since %s (%s: a run going or"
				    " waiting for its lock): rows after it are kept until one is written",
				    pb_time_format(base, ts),
				    r < 0 ? "out of memory" : "the decision core has not been at rest");
		} else {
			pb_log_debug("audit retention: %s: no snapshot input now",
				     r < 0 ? "out of memory" : "the decision core is not at rest");
		}
	}
	o.cutoff = now - cc->audit_retention_days * 86400000;
	o.keep_events_after = c->run_mark;
	o.keep_runs_from = now - cc->throttle_per_s * 1000;
	o.max_rows = CS_PRUNE_ROWS;
	o.vacuum_pages = CS_PRUNE_PAGES;
	n = pb_audit_prune_step(c->db, &o, &e);
	if (n < 0) {
		cs_log_db_error(c, &e);
		pb_timers_set(&c->timers, CS_T_PRUNE, mono + CS_PRUNE_EVERY_MS);
		return;
	}
	c->pruned += (uint64_t)n;
	if (n)
		pb_log_debug("audit retention: %lld rows older than %lld days pruned",
			     (long long)n, (long long)cc->audit_retention_days);
	pb_timers_set(&c->timers, CS_T_PRUNE,
		      mono + (n >= CS_PRUNE_ROWS ? CS_PRUNE_BACKLOG_MS : CS_PRUNE_EVERY_MS));
}

static void timers(struct consumer *c, struct idle *idle, int64_t mono)
{
	int64_t now;

	if (pb_timers_due(&c->timers, CS_T_RELOAD, mono)) {
		pb_timers_clear(&c->timers, CS_T_RELOAD);
		reload(c, "inotify");
	}
	cs_broker_tick(c, mono);
	if (c->done)
		return;
	cs_report_tick(c, mono);
	if (c->up && c->conf.cfg->heartbeat_s > 0 &&
	    mono - c->last_pump >= c->conf.cfg->heartbeat_s * 1000 / 4)
		cs_broker_pump(c);
	/* the broker's work above can take long (a connect and its catch-up,
	 * a pump through a backlog) and stamps each event as it comes: the
	 * clock is read again, so the core never sees time go back */
	now = pb_now_ms();
	mono = pb_mono_ms();
	cs_expire(c, now);
	if (c->pend_since && mono >= cs_flush_next(c))
		cs_flush(c, 0);
	cs_runs_drive(c, now);
	if (c->stopping)
		cs_runs_stop(c, mono);
	prune(c, now, mono);
	if (c->snap_wanted && !c->pend_since && !c->n_pend && !c->hist_active && !c->db_failing &&
	    !c->stopping)
		snapshot(c, now);
	cs_sd_status(c);	/* sent only when the state changed */
	if (pb_timers_due(&c->timers, CS_T_WATCHDOG, mono)) {
		pb_sd_notify("WATCHDOG=1");
		pb_timers_set(&c->timers, CS_T_WATCHDOG, mono + c->wd_every);
	}
	idle_note(c, idle, mono, 0);
	idle_tick(c, idle, mono);
}

static void loop(struct consumer *c)
{
	struct pollfd fds[MAX_FDS];
	struct idle idle = { 0, pb_mono_ms(), 0, RELEASE_BURST_US, pb_mono_ms() };

	while (!c->done) {
		int n = 0, broker = -1, rep = -1, ctl, timeout;

		timers(c, &idle, pb_mono_ms());
		if (c->done)
			break;
		timeout = poll_timeout(c, &idle, pb_now_ms(), pb_mono_ms());
		fds[n++] = (struct pollfd){ .fd = c->sigfd, .events = POLLIN };
		if (c->infd >= 0)
			fds[n++] = (struct pollfd){ .fd = c->infd, .events = POLLIN };
		if (cs_broker_fd(c) >= 0) {
			broker = n;
			fds[n++] = (struct pollfd){ .fd = cs_broker_fd(c), .events = POLLIN };
		}
		if (cs_report_fd(c) >= 0) {
			rep = n;
			fds[n++] = (struct pollfd){ .fd = cs_report_fd(c), .events = POLLIN };
		}
		n += pb_runner_pollfds(c->runner, fds + n, 4);
		n += pb_runner_pollfds(c->notifier, fds + n, 4);
		ctl = n;
		if (c->ctl)
			n += pb_control_pollfds(c->ctl, fds + n, MAX_FDS - n);
		if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR) {
			pb_log_err("poll: %s", strerror(errno));
			break;
		}
		if (fds[0].revents)
			on_signals(c);
		if (c->infd >= 0 && fds[1].revents)
			on_inotify(c);
		cs_runs_child(c);
		if (c->ctl)
			pb_control_handle(c->ctl, pb_mono_ms());
		if ((broker >= 0 && fds[broker].revents) || cs_broker_buffered(c))
			cs_broker_pump(c);
		if ((rep >= 0 && fds[rep].revents) || cs_report_buffered(c))
			cs_report_pump(c);
		while (ctl < n && !fds[ctl].revents)
			ctl++;
		idle_note(c, &idle, pb_mono_ms(), ctl < n);
	}
}

/* ---- the whole daemon ---- */

static int daemon_init(struct consumer *c, struct pb_err *err)
{
	struct pb_decide_params dp;

	pb_timers_init(&c->timers);
	for (int i = 0; i < CS_T__COUNT; i++)
		pb_timers_name(&c->timers, i, cs_timer_names[i]);
	if (cs_conf_load(c->config_path, &c->conf, err) < 0 || set_paths(c, err) < 0 ||
	    make_state_dir(c->conf.cfg->state_dir, err) < 0)
		return -1;
	if (!(c->db = pb_audit_open(c->db_path, 0, err)) ||
	    !(c->aw = pb_audit_writer_new(c->db, err)))
		return -1;
	/* a busy log fails fast and is retried by the loop, which must not
	 * stall (readers never block us in WAL mode; this is for the rest) */
	sqlite3_busy_timeout(c->db, 250);
	if (c->conf.cfg->consumer.audit_retention_days > 0) {
		int r = pb_audit_incremental_vacuum_on(c->db, err);

		if (r < 0)
			return -1;
		if (r)
			pb_log_notice("%s: switched to incremental vacuum (once), so pruned rows give "
				      "their space back", c->db_path);
	}
	pb_timers_set(&c->timers, CS_T_PRUNE, pb_mono_ms());
	if (pb_audit_meta_set(c->aw, "node", c->conf.cfg->node, err) < 0 ||
	    pb_audit_meta_set(c->aw, "federation", c->conf.cfg->federation, err) < 0)
		return -1;
	cs_conf_decide_params(&c->conf, &dp);
	c->core = pb_decide_new(&dp, cs_core_record, c);
	c->seen = cs_seen_new(SEEN_CAPACITY);
	c->marks = cs_marks_new();
	c->sess = new_session(c->conf.cfg);
	if (!c->core || !c->seen || !c->marks || !c->sess)
		return pb_err_set(err, EX_OSERR, "out of memory");
	if (cs_catchup_load(c, err) < 0 || cs_restore(c, err) < 0 || cs_runs_init(c, err) < 0 ||
	    cs_report_init(c, err) < 0)
		return -1;
	if (!(c->ctl = pb_control_listen(c->sock_path, cs_control_handler, c, err)))
		return -1;
	if (open_signals(c, err) < 0)
		return -1;
	watch_files(c);
	c->wd_every = pb_sd_watchdog_ms() / 2;
	if (c->wd_every)
		pb_timers_set(&c->timers, CS_T_WATCHDOG, pb_mono_ms());
	return 0;
}

static void daemon_release(struct consumer *c)
{
	if (c->ctl)
		pb_control_close(c->ctl);
	cs_runs_release(c);
	cs_report_release(c);
	if (c->sess) {
		cs_broker_close(c);
		pb_session_free(c->sess);
	}
	cs_pend_release(c);
	for (int ch = 0; ch < CS_N_CHANNELS; ch++) {
		cs_msg_release(&c->msg[ch]);
		free(c->acks[ch].rejects);
	}
	pb_strv_free(c->bound, c->n_bound);
	pb_strv_free(c->hist_keys, c->n_hist_keys);
	pb_decide_free(c->core);
	cs_seen_free(c->seen);
	cs_marks_free(c->marks);
	pb_audit_writer_free(c->aw);
	if (c->db)
		pb_audit_close(c->db);
	if (c->sigfd >= 0)
		close(c->sigfd);
	if (c->infd >= 0)
		close(c->infd);
	cs_conf_release(&c->conf);
}

/* glibc's malloc, told two things (mallopt, for this process only):
 * blocks of 64 KiB and more are mapped on their own, and the heap grows
 * by 16 KiB past a request instead of 128 KiB. rabbitmq-c's buffers and
 * decoding pool pages (64 and 128 KiB, calloc'd) and the message bodies
 * are then fresh mappings whose pages become resident as they are
 * written, instead of heap memory that calloc clears or that a realloc
 * copies into: at login the outbound buffer grows from 64 to 128 KiB,
 * and from one heap block to another that copy makes 64 KiB resident for
 * good. Idle RssAnon 1,000 -> 900 kB (docs/BENCHMARKS-rounds.md, "Idle memory,
 * round 4").
 * Fixing the threshold turns off glibc's raising it as mapped blocks are
 * freed; a drain's blocks of that size live as long as the connection. */
#define MMAP_THRESHOLD (64 * 1024)
#define TOP_PAD (16 * 1024)

int cs_daemon_run(const char *config_path, struct pb_err *err)
{
	struct consumer *c;
	int rc = -1;

	mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
	mallopt(M_TOP_PAD, TOP_PAD);
	if (!(c = calloc(1, sizeof(*c))))
		return pb_err_set(err, EX_OSERR, "out of memory");
	c->config_path = config_path;
	c->sigfd = c->infd = c->wd_services = c->wd_config = -1;
	c->started_at = pb_now_ms();
	/* systemd's variables are the daemon's, not its children's: a
	 * provbus-publish run by a provision must not write <N> prefixes into
	 * the run's output, nor notify systemd in the daemon's name (the log
	 * format was chosen at pb_log_init) */
	pb_sd_detach();
	unsetenv("JOURNAL_STREAM");
	if (daemon_init(c, err) < 0)
		goto out;
	pb_log_notice("started node=%s federation=%s queue=%s keys=%zu regions=%zu state_dir=%s",
		      c->conf.cfg->node, c->conf.cfg->federation, c->queue, c->conf.n_keys,
		      c->conf.n_regions, c->conf.cfg->state_dir);
	/* READY=1 once the configuration and the audit log are loaded and the
	 * loop is about to run, without waiting for the broker (provbus-consumer(1): a
	 * `systemctl start` must not hang while the broker is away); STATUS=
	 * says the rest */
	cs_sd_status(c);
	pb_sd_notify("READY=1");
	c->ready_sent = 1;
	loop(c);
	if (cs_flush(c, 1) < 0)
		pb_log_err("exiting with %zu audit rows not committed: their events were not acked "
			   "and will be redelivered", c->n_pend);
	if (!c->exit_code)
		cs_report_stop(c);
	cs_broker_close(c);
	if (c->exit_code) {
		*err = c->fatal;
		goto out;
	}
	pb_log_notice("stopped");
	rc = 0;
out:
	daemon_release(c);
	free(c);
	return rc;
}
