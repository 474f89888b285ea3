/* session.h — one AMQP connection over rabbitmq-c 0.11, the one place
 * that knows its quirks.
 *
 * - A list of broker URLs tried in order; pb_session_connect walks the list
 *   once starting at the URL after the last one that failed; the caller
 *   loops with pb_backoff between rounds (250 ms -> 30 s, jitter; 2 s at
 *   most while recovering a connection that had been healthy).
 * - Password: from the URL for local tests, else from password_file
 *   (group/world-readable file: a warning). Never logged: every URL shown
 *   is redacted ("amqp://user@host:port/vhost").
 * - TLS for amqps:// URLs (CA, client cert/key, hostname check).
 * - SASL EXTERNAL (the broker takes the user from the client
 *   certificate: rabbitmq_auth_mechanism_ssl) for an amqps:// URL when a
 *   client certificate is set and no password is (none in the URL, no
 *   password_file, no opts.password).
 * - Heartbeats (heartbeat_s); the capabilities table advertises
 *   connection.blocked, consumer_cancel_notify, publisher_confirms,
 *   basic.nack, so the broker sends them.
 * - pb_amqp_reply_err / pb_amqp_status_err turn rabbitmq-c's two error
 *   channels into one message with the broker's reply code and text
 *   ("403 ACCESS_REFUSED - access to exchange 'provbus.x' ...") and an
 *   EX_* code: 403 -> EX_NOPERM, 404 -> EX_CONFIG (missing object),
 *   406 -> EX_CONFIG (precondition), 530 -> EX_NOPERM (vhost access; but
 *   EX_CONFIG for "vhost ... not found"), socket/connect errors -> EX_UNAVAILABLE,
 *   heartbeat timeouts and closed connections -> EX_TEMPFAIL.
 *
 * A session owns one connection and uses channel 1. */
#ifndef PB_SESSION_H
#define PB_SESSION_H

#include <stdint.h>

#include <amqp.h>

#include "config.h"
#include "err.h"

#define PB_CHANNEL 1

struct pb_session_opts {
	const char *const *urls;	/* at least one */
	size_t n_urls;
	const char *password_file;	/* may be NULL */
	const struct pb_tls *tls;	/* may be NULL */
	int heartbeat_s;
	const char *vhost_override;	/* NULL: the URL's vhost */
	const char *connection_name;	/* shown in the management UI */
	int connect_timeout_ms;		/* per URL; 0 = 5000 */
	const char *password;		/* may be NULL; else used (copied) for a
					 * URL without password, before
					 * password_file (an operator's prompt) */
	const char *identity;		/* SASL EXTERNAL: the user the
					 * certificate names (the node), when
					 * the URL names none; may be NULL */
	int frame_max;			/* asked at login; 0 = 131072 (4096 at
					 * least: AMQP's minimum) */
};

/* Options from a node config (urls, password file, tls, heartbeat). */
void pb_session_opts_from_config(struct pb_session_opts *o, const struct pb_config *cfg,
				 const char *connection_name);

struct pb_session;

struct pb_session *pb_session_new(const struct pb_session_opts *opts);
void pb_session_free(struct pb_session *s);	/* closes if connected */

/* Tries each URL once, starting after the last one that failed. On
 * success the connection is logged in and channel 1 is open. Returns 0, or
 * -1 with err (EX_UNAVAILABLE listing what each URL said; EX_NOPERM for a
 * refused login; EX_CONFIG for a bad URL or a missing TLS file). */
int pb_session_connect(struct pb_session *s, struct pb_err *err);

/* Closes channel and connection politely (or just the socket if it is
 * broken). Safe to call when not connected. */
void pb_session_close(struct pb_session *s);

/* Drops the connection without the close handshake (after an error). */
void pb_session_abort(struct pb_session *s);

int pb_session_connected(const struct pb_session *s);
amqp_connection_state_t pb_session_conn(struct pb_session *s);
int pb_session_fd(struct pb_session *s);	/* -1 when not connected */
/* 1 when the connected TCP socket fd reached itself: its own address is
 * its peer's. That happens when nothing listens on a loopback port inside
 * the kernel's ephemeral range and the connect is handed that very port as
 * its source port; while such a connection lives, the server cannot bind
 * its port again. 0 otherwise (and for anything that is not a socket). */
int pb_sock_self_connected(int fd);
/* The redacted URL of the connected broker, or "" */
const char *pb_session_url(const struct pb_session *s);
/* The broker user the connection logged in as ("" when not connected):
 * what RabbitMQ accepts as a message's user_id. */
const char *pb_session_user(const struct pb_session *s);
/* The vhost in use (from the URL or vhost_override) */
const char *pb_session_vhost(const struct pb_session *s);

/* For a second protocol to the same broker (provbus-fleet's stream
 * protocol reader, fleet/rstream.c), once connected: the connected URL's
 * host (host_size bytes), whether it is amqps://, and the password the
 * login used (URL, opts.password or password_file), a new string the
 * caller frees with pb_session_wipe_free; *password is NULL with SASL
 * EXTERNAL (a client certificate). 0, or -1 with err (not connected, out
 * of memory, the password file unreadable). */
int pb_session_login_info(struct pb_session *s, char *host, size_t host_size, int *tls,
			  char **password, struct pb_err *err);
/* Overwrites a password with zeros, then frees it (NULL: nothing). */
void pb_session_wipe_free(char *p);

/* Writes url without its password ("amqp://user:pw@h/v" ->
 * "amqp://user@h/v") into out (size bytes, truncated, NUL-terminated).
 * The only form in which a URL may be printed or logged. */
void pb_session_redact_url(const char *url, char *out, size_t size);
/* 1 when url has a password (user:PASS@) / a user (USER@). */
int pb_url_has_password(const char *url);
int pb_url_has_user(const char *url);
/* A URL given in argv (tests, a lab broker): a copy, and its password
 * blanked out of argv with 'x's, so that ps and /proc/PID/cmdline stop
 * showing it (the password_file is the way for anything else). The copy
 * to free with pb_session_wipe_free, or NULL when out of memory. */
char *pb_url_take_arg(char *arg);

/* Error translation. what names the operation ("declaring exchange
 * provbus.x"). Both return -1 with err set, or 0 when r/status is fine. */
int pb_amqp_reply_err(amqp_rpc_reply_t r, const char *what, struct pb_err *err);
int pb_amqp_status_err(int status, const char *what, struct pb_err *err);
/* The error of a broker method frame (connection.close / channel.close):
 * "REPLY_CODE REPLY_TEXT" with its EX_ code. */
int pb_amqp_close_err(const amqp_method_t *m, const char *what, struct pb_err *err);

/* 1 when the broker answered an RPC by closing the channel with 404 (the
 * exchange, queue or stream does not exist), else 0. The channel is then
 * closed: re-open it (pb_session_reopen_channel) or answer the close. */
int pb_amqp_not_found(amqp_rpc_reply_t r);
/* 1 when basic.consume of a stream was refused because the connected
 * node holds no replica of it (406 "... does not have a replica on the
 * local node": RabbitMQ reads a stream only where it is stored; 406 alone
 * is also a wrong argument, the text decides), else 0. */
int pb_amqp_no_local_replica(amqp_rpc_reply_t r);

/* Passive declare of exchange; missing: EX_CONFIG "exchange provbus.F not
 * found: run provbus-schema apply". A 404 closes the channel: the session
 * re-opens channel 1 before returning. */
int pb_session_check_exchange(struct pb_session *s, const char *exchange, struct pb_err *err);

/* Reopens channel 1 after the broker closed it (406, 404 ...) in answer
 * to an RPC, or when a channel.close may still be unread; also works on an
 * open channel (closes it first). A channel.close frame the caller read
 * itself must go to pb_session_closed_by_broker instead: the broker then
 * waits for a close-ok that only the caller's frame says is owed. */
int pb_session_reopen_channel(struct pb_session *s, struct pb_err *err);

/* For a channel.close or connection.close method the caller read itself
 * (amqp_simple_wait_frame, amqp_consume_message's unexpected frame): sets
 * err like pb_amqp_close_err, answers the broker and, for a channel.close,
 * re-opens channel 1 (a failure to do so is logged; check
 * pb_session_connected); for a connection.close, drops the connection
 * (pb_session_connected() is then 0). Always returns -1. */
int pb_session_closed_by_broker(struct pb_session *s, const amqp_method_t *m, const char *what,
				struct pb_err *err);

/* Reconnect backoff, two schedules:
 * - persistent failure (no connection yet, or one that came back and died
 *   within PB_BACKOFF_HEALTHY_MS, or an outage past PB_BACKOFF_RECOVER_MS):
 *   250 ms doubling to 30 s, each delay drawn in [d/2, d];
 * - recovering (a connection that had been up PB_BACKOFF_HEALTHY_MS or
 *   more was lost): 250 ms doubling to a 1.5 s cap, full jitter (each delay
 *   drawn in [0, d]: a fleet that lost one broker comes back spread over
 *   the cap, not in one instant), for PB_BACKOFF_RECOVER_MS of delays;
 *   then the persistent schedule takes over from 1.5 s.
 * pb_backoff_connected when a connection is up, pb_backoff_lost when it is
 * lost (returns the first delay), pb_backoff_next after a failed round.
 * pb_backoff_reset: back to the start, as if nothing had ever worked. */
#define PB_BACKOFF_MIN_MS 250
#define PB_BACKOFF_MAX_MS 30000
#define PB_BACKOFF_RECOVER_CAP_MS 1500
#define PB_BACKOFF_HEALTHY_MS 5000
#define PB_BACKOFF_RECOVER_MS 300000
struct pb_backoff {
	int64_t cur_ms;		/* the current ceiling d; 0: none yet */
	int recovering;		/* 1: the recovering schedule */
	int64_t up_at;		/* monotonic ms the connection came up; 0: down */
	int64_t waited_ms;	/* delays handed out in this outage */
};
#define PB_BACKOFF_INIT { 0, 0, 0, 0 }
int64_t pb_backoff_next(struct pb_backoff *b);
void pb_backoff_connected(struct pb_backoff *b, int64_t now_ms);
int64_t pb_backoff_lost(struct pb_backoff *b, int64_t now_ms);
void pb_backoff_reset(struct pb_backoff *b);

/* Builds an AMQP table entry helpers: string and int, for declare args. */
amqp_table_entry_t pb_table_str(const char *key, const char *value);
amqp_table_entry_t pb_table_int(const char *key, int64_t value);
amqp_table_entry_t pb_table_bool(const char *key, int value);

#endif
