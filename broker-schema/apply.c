/* apply.c — declares and checks the topology on a broker.
 *
 * AMQP 0-9-1 has no "does it exist" without side effects but the passive
 * declare, and a passive declare of a missing object closes the channel
 * (404): every check is followed, on 404, by re-opening channel 1. A
 * passive declare does not compare arguments; the active declare that
 * follows does, and answers 406 PRECONDITION_FAILED when the object exists
 * with others. Bindings have no passive check: queue.bind is idempotent,
 * so apply just binds. */
#include "apply.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

enum presence { PRESENT, ABSENT, BROKEN };

/* Passive declare of o. ABSENT after a 404 (channel re-opened); BROKEN
 * with err for anything else. */
static enum presence check(struct pb_session *s, const struct topo_obj *o, struct pb_err *err)
{
	amqp_connection_state_t c = pb_session_conn(s);
	amqp_bytes_t name = amqp_cstring_bytes(o->name);
	amqp_rpc_reply_t r;
	char what[256];

	snprintf(what, sizeof(what), "checking %s %s", topo_kind_name(o->kind), o->name);
	if (o->kind == TOPO_EXCHANGE)
		amqp_exchange_declare(c, PB_CHANNEL, name, amqp_cstring_bytes(o->type), 1, 0, 0, 0,
				      amqp_empty_table);
	else
		amqp_queue_declare(c, PB_CHANNEL, name, 1, 0, 0, 0, amqp_empty_table);
	r = amqp_get_rpc_reply(c);
	if (!pb_amqp_reply_err(r, what, err))
		return PRESENT;
	if (pb_amqp_not_found(r)) {
		pb_err_clear(err);
		return pb_session_reopen_channel(s, err) ? BROKEN : ABSENT;
	}
	return BROKEN;
}

/* Active declare (or bind) of o with its arguments. */
static int declare(struct pb_session *s, const struct topo_obj *o, struct pb_err *err)
{
	amqp_connection_state_t c = pb_session_conn(s);
	amqp_table_entry_t e[3];
	amqp_table_t args = { 0, e };
	char what[400];

	if (o->kind == TOPO_BINDING) {
		snprintf(what, sizeof(what), "binding queue %s to exchange %s", o->name, o->source);
		amqp_queue_bind(c, PB_CHANNEL, amqp_cstring_bytes(o->name),
				amqp_cstring_bytes(o->source), amqp_cstring_bytes(o->key),
				amqp_empty_table);
	} else if (o->kind == TOPO_EXCHANGE) {
		snprintf(what, sizeof(what), "declaring exchange %s", o->name);
		if (o->alternate)
			e[args.num_entries++] = pb_table_str("alternate-exchange", o->alternate);
		amqp_exchange_declare(c, PB_CHANNEL, amqp_cstring_bytes(o->name),
				      amqp_cstring_bytes(o->type), 0, 1, 0, 0, args);
	} else {
		snprintf(what, sizeof(what), "declaring queue %s", o->name);
		if (strcmp(o->type, "classic"))
			e[args.num_entries++] = pb_table_str("x-queue-type", o->type);
		if (o->max_age)
			e[args.num_entries++] = pb_table_str("x-max-age", o->max_age);
		if (o->max_length)
			e[args.num_entries++] = pb_table_int("x-max-length", o->max_length);
		amqp_queue_declare(c, PB_CHANNEL, amqp_cstring_bytes(o->name), 0, 1, 0, 0, args);
	}
	return pb_amqp_reply_err(amqp_get_rpc_reply(c), what, err);
}

static int is_406(amqp_rpc_reply_t r)
{
	return r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
	       ((amqp_channel_close_t *)r.reply.decoded)->reply_code == 406;
}

/* An earlier provbus-schema bound each history stream with "#", which
 * also routes reports (docs/protocol.md) into it; queue.unbind of a binding that
 * does not exist is a no-op in RabbitMQ. */
static int unbind_legacy(struct pb_session *s, const struct topology *t, struct pb_err *err)
{
	amqp_connection_state_t c = pb_session_conn(s);

	for (size_t i = 0; i < t->n_feds; i++) {
		char ex[160], hist[160], what[400];

		snprintf(ex, sizeof(ex), "provbus.%s", t->feds[i].name);
		snprintf(hist, sizeof(hist), "provbus.%s.history", t->feds[i].name);
		snprintf(what, sizeof(what), "unbinding queue %s from exchange %s (#)", hist, ex);
		amqp_queue_unbind(c, PB_CHANNEL, amqp_cstring_bytes(hist), amqp_cstring_bytes(ex),
				  amqp_cstring_bytes("#"), amqp_empty_table);
		if (pb_amqp_reply_err(amqp_get_rpc_reply(c), what, err))
			return -1;
	}
	return 0;
}

int schema_apply(struct pb_session *s, const struct topology *t, FILE *out, struct pb_err *err)
{
	struct topo_obj *objs = NULL;
	size_t n = topo_objects(t, &objs);
	int created = 0, present = 0, differ = 0, rc = -1;
	int fresh[2] = { 0, 0 };	/* the binding's exchange, queue: just created */

	if (n == (size_t)-1) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct topo_obj *o = &objs[i];
		enum presence p = PRESENT;

		if (o->kind != TOPO_BINDING && (p = check(s, o, err)) == BROKEN)
			goto out;
		if (declare(s, o, err)) {
			amqp_rpc_reply_t r = amqp_get_rpc_reply(pb_session_conn(s));
			if (!is_406(r))
				goto out;
			if (o->kind == TOPO_QUEUE && !strcmp(o->type, "stream") &&
			    strstr(err->msg, "'x-max-age'") && strstr(err->msg, "received none")) {
				/* made by an earlier provbus-schema, with its
				 * retention as an argument: it keeps working */
				pb_log_warn("stream %s carries an x-max-age argument from an earlier provbus-schema: its retention is the shorter of that and policy %s; to let the policy alone decide, delete the stream and apply again",
					    o->name, strstr(o->name, ".fleet") ? TOPO_FLEET_POLICY : TOPO_HISTORY_POLICY);
				pb_err_clear(err);
				if (pb_session_reopen_channel(s, err))
					goto out;
				present++;
				fresh[1] = 0;
				continue;
			}
			/* report it, go on with the others, fail at the end */
			pb_log_err("%s %s exists with other arguments: %s; delete it or fix the topology",
				   topo_kind_name(o->kind), o->name,
				   strstr(err->msg, ": 406") ? strstr(err->msg, ": 406") + 2 : err->msg);
			differ++;
			fresh[o->kind == TOPO_QUEUE] = 0;
			pb_err_clear(err);
			if (pb_session_reopen_channel(s, err))
				goto out;
			continue;
		}
		if (o->kind == TOPO_EXCHANGE)
			fresh[0] = p == ABSENT;
		if (o->kind == TOPO_QUEUE)
			fresh[1] = p == ABSENT;
		if (o->kind == TOPO_BINDING)	/* a new end means a new binding */
			p = fresh[0] || fresh[1] ? ABSENT : PRESENT;
		if (p == ABSENT) {
			created++;
			if (o->kind == TOPO_BINDING)
				fprintf(out, "created binding %s -> %s (%s)\n", o->source, o->name,
					o->key[0] ? o->key : "\"\"");
			else
				fprintf(out, "created %s %s\n", topo_kind_name(o->kind), o->name);
		} else {
			present++;
			pb_log_info("present %s %s%s%s", topo_kind_name(o->kind),
				    o->kind == TOPO_BINDING ? o->source : "",
				    o->kind == TOPO_BINDING ? " -> " : "", o->name);
		}
	}
	if (unbind_legacy(s, t, err))
		goto out;
	fprintf(out, "%d created, %d already present\n", created, present);
	if (differ) {
		pb_err_set(err, EX_CONFIG, "%d object%s with other arguments (see above): delete %s or fix the topology",
			   differ, differ > 1 ? "s exist" : " exists", differ > 1 ? "them" : "it");
		goto out;
	}
	rc = 0;
out:
	free(objs);
	return rc;
}

int schema_verify(struct pb_session *s, const struct topology *t, FILE *out, struct pb_err *err)
{
	struct topo_obj *objs = NULL;
	size_t n = topo_objects(t, &objs);
	int missing = 0, present = 0, rc = -1;

	if (n == (size_t)-1) {
		pb_err_set(err, EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct topo_obj *o = &objs[i];
		if (o->kind == TOPO_BINDING)
			continue;
		switch (check(s, o, err)) {
		case BROKEN:
			goto out;
		case ABSENT:
			missing++;
			fprintf(out, "missing: %s %s\n", topo_kind_name(o->kind), o->name);
			break;
		case PRESENT:
			present++;
			pb_log_info("present %s %s", topo_kind_name(o->kind), o->name);
			break;
		}
	}
	/* stdout holds only the "missing:" lines when something is missing */
	if (!missing)
		fprintf(out, "all %d exchanges and queues present (bindings are not checked)\n", present);
	else
		pb_log_info("%d exchanges and queues present, %d not", present, missing);
	rc = missing;
out:
	free(objs);
	return rc;
}
