/* control.h — the daemon's control socket (state_dir/control.sock, mode
 * 0600) and its client.
 *
 * Protocol: the client connects, sends one line (a verb: "status",
 * "pause", "resume", "provision-now"), the server answers one line of JSON
 * and closes. The server side is non-blocking and driven by the daemon's
 * poll loop; a slow or silent client cannot stall it (each connection has a
 * deadline and a bounded buffer).
 */
#ifndef PB_CONTROL_H
#define PB_CONTROL_H

#include <poll.h>
#include <stdint.h>

#include "err.h"

struct pb_control;

/* handler(verb, ctx) returns a malloc'd JSON text (one line, no newline)
 * that the server sends back and frees. An unknown verb should get
 * {"error":"unknown verb 'x'"}. */
typedef char *(*pb_control_handler)(const char *verb, void *ctx);

/* Binds path (removing a stale socket file first; a live one — another
 * daemon answering on it — is an error EX_TEMPFAIL "another provbus-consumer
 * is running on PATH"), mode 0600, listening, non-blocking. */
struct pb_control *pb_control_listen(const char *path, pb_control_handler handler, void *ctx,
				     struct pb_err *err);
/* Closes every connection and unlinks the socket file. */
void pb_control_close(struct pb_control *c);

/* Fills up to max pollfds (the listener and each client); returns how many. */
int pb_control_pollfds(struct pb_control *c, struct pollfd *fds, int max);
/* Milliseconds until the nearest client deadline (0 when one is due), or
 * -1 when no client is connected: a bound for the loop's poll timeout, so
 * a silent client is dropped on time. */
int pb_control_timeout_ms(const struct pb_control *c, int64_t now_ms);
/* Serves whatever is ready (accept, read a line, answer, close); never
 * blocks. now_ms drops connections older than 2 s. */
void pb_control_handle(struct pb_control *c, int64_t now_ms);

/* Client: sends verb to the daemon at path and returns its answer (a
 * malloc'd string without the newline) or NULL with err: EX_UNAVAILABLE
 * "no provbus-consumer answers on PATH (is it running?)"; timeout_ms
 * bounds the whole exchange. */
char *pb_control_call(const char *path, const char *verb, int timeout_ms, struct pb_err *err);

#endif
