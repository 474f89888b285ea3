/* apply.h — provbus-schema's work on a live broker, and its export. */
#ifndef PB_SCHEMA_APPLY_H
#define PB_SCHEMA_APPLY_H

#include <stdio.h>

#include "err.h"
#include "session.h"
#include "topology.h"

/* Declares every object of t (idempotent), printing to out one line per
 * object it created and a summary "N created, M already present". An
 * object that exists with other arguments is reported (406) and the
 * others still declared. Returns 0, or -1 with err: EX_CONFIG (406),
 * EX_NOPERM (403), EX_UNAVAILABLE/EX_TEMPFAIL (connection lost). */
int schema_apply(struct pb_session *s, const struct topology *t, FILE *out, struct pb_err *err);

/* Checks that every exchange and queue of t exists (passive declares;
 * bindings cannot be checked without the management API). Prints
 * "missing: KIND NAME" lines to out. Returns the number missing (>= 0), or
 * -1 with err when the broker failed. */
int schema_verify(struct pb_session *s, const struct topology *t, FILE *out, struct pb_err *err);

/* Prints RabbitMQ definitions JSON (for rabbitmqctl import_definitions)
 * of t to out. credentials: the directory of the users' password files
 * (each created when missing, never overwritten), whose hashes go into
 * the users; NULL leaves users and permissions out (--no-users).
 * Returns 0, or -1 with err (EX_CANTCREAT, EX_NOINPUT, EX_DATAERR for a
 * password file; EX_IOERR for out). */
int schema_export(const struct topology *t, const char *credentials, FILE *out,
		  struct pb_err *err);

#endif
