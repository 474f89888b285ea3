/* export.c — the topology as RabbitMQ definitions JSON, for
 * `rabbitmqctl import_definitions FILE` (the format of
 * `rabbitmqctl export_definitions`).
 *
 * Each node becomes a user without a password (an empty password_hash
 * matches no password: set one with `rabbitmqctl change_password`) and no
 * tags, with permissions on its vhost limited to what a node does:
 * - configure: its own queue provbus.F.node.NODE (the consumer declares it);
 * - write: its federation's exchange (publishing), its own queue
 *   (queue.bind needs write on the queue), and provbus.dlx (RabbitMQ
 *   checks write on the dead-letter exchange named by a queue declare);
 * - read: its own queue (consuming), provbus.F (queue.bind needs read on
 *   the exchange) and provbus.F.history (the catch-up of provbus-consumer(1));
 * and topic permissions on provbus.F: publish only REGION.provides.* and
 * REGION.retire.*; read any key. */
#include "apply.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The version written as "rabbit_version"; import_definitions reads it
 * as information only. */
#define EXPORT_RABBIT_VERSION "3.10.0"

static json_t *exchange_json(const struct topology *t, const struct topo_obj *o)
{
	json_t *args = json_object();

	if (o->alternate)
		json_object_set_new(args, "alternate-exchange", json_string(o->alternate));
	return json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:o}", "name", o->name, "vhost", t->vhost,
			 "type", o->type, "durable", 1, "auto_delete", 0, "internal", 0,
			 "arguments", args);
}

static json_t *queue_json(const struct topology *t, const struct topo_obj *o)
{
	json_t *args = json_object();

	if (strcmp(o->type, "classic"))
		json_object_set_new(args, "x-queue-type", json_string(o->type));
	if (o->max_age)
		json_object_set_new(args, "x-max-age", json_string(o->max_age));
	if (o->max_length)
		json_object_set_new(args, "x-max-length", json_integer(o->max_length));
	return json_pack("{s:s, s:s, s:b, s:b, s:o}", "name", o->name, "vhost", t->vhost,
			 "durable", 1, "auto_delete", 0, "arguments", args);
}

static json_t *binding_json(const struct topology *t, const struct topo_obj *o)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{}}", "source", o->source, "vhost", t->vhost,
			 "destination", o->name, "destination_type", "queue", "routing_key", o->key,
			 "arguments");
}

/* name as a regular expression matching just it (names hold no other
 * special character than '.') */
static void re_name(char *buf, size_t size, const char *name)
{
	size_t j = 0;

	for (size_t i = 0; name[i] && j + 3 < size; i++) {
		if (name[i] == '.')
			buf[j++] = '\\';
		buf[j++] = name[i];
	}
	buf[j] = '\0';
}

static int add_node(json_t *root, const struct topology *t, const struct topo_node *n)
{
	char exname[160], qname[300], hname[200];
	char queue[600], ex[400], hist[400], dlx[64], conf[700], write[1600], read[1600], topic[200];

	snprintf(exname, sizeof(exname), "provbus.%s", n->federation);
	snprintf(qname, sizeof(qname), "provbus.%s.node.%s", n->federation, n->name);
	snprintf(hname, sizeof(hname), "provbus.%s.history", n->federation);
	re_name(queue, sizeof(queue), qname);
	re_name(ex, sizeof(ex), exname);
	re_name(hist, sizeof(hist), hname);
	re_name(dlx, sizeof(dlx), TOPO_DLX);
	snprintf(conf, sizeof(conf), "^%s$", queue);
	snprintf(write, sizeof(write), "^(%s|%s|%s)$", ex, queue, dlx);
	snprintf(read, sizeof(read), "^(%s|%s|%s)$", queue, ex, hist);
	snprintf(topic, sizeof(topic), "^%s\\.(provides|retire)\\.", n->region);
	if (json_array_append_new(json_object_get(root, "users"),
				  json_pack("{s:s, s:s, s:s, s:[]}", "name", n->name,
					    "password_hash", "", "hashing_algorithm",
					    "rabbit_password_hashing_sha256", "tags")))
		return -1;
	if (json_array_append_new(json_object_get(root, "permissions"),
				  json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", n->name, "vhost",
					    t->vhost, "configure", conf, "write", write, "read", read)))
		return -1;
	return json_array_append_new(json_object_get(root, "topic_permissions"),
				     json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", n->name, "vhost",
					       t->vhost, "exchange", exname, "write", topic, "read",
					       ".*"));
}

int schema_export(const struct topology *t, FILE *out, struct pb_err *err)
{
	struct topo_obj *objs = NULL;
	size_t n = topo_objects(t, &objs);
	json_t *root = NULL;
	int rc = -1;

	if (n == (size_t)-1)
		goto oom;
	root = json_pack("{s:s, s:s, s:s, s:[], s:[{s:s}], s:[], s:[], s:[], s:[], s:[], s:[], s:[], s:[]}",
			 "rabbit_version", EXPORT_RABBIT_VERSION, "rabbitmq_version", EXPORT_RABBIT_VERSION,
			 "product_name", "RabbitMQ", "users", "vhosts", "name", t->vhost,
			 "permissions", "topic_permissions", "parameters", "global_parameters",
			 "policies", "queues", "exchanges", "bindings");
	if (!root)
		goto oom;
	for (size_t i = 0; i < t->n_nodes; i++)
		if (add_node(root, t, &t->nodes[i]))
			goto oom;
	for (size_t i = 0; i < n; i++) {
		const struct topo_obj *o = &objs[i];
		const char *list = o->kind == TOPO_EXCHANGE ? "exchanges" :
				   o->kind == TOPO_QUEUE ? "queues" : "bindings";
		json_t *j = o->kind == TOPO_EXCHANGE ? exchange_json(t, o) :
			    o->kind == TOPO_QUEUE ? queue_json(t, o) : binding_json(t, o);
		if (json_array_append_new(json_object_get(root, list), j))
			goto oom;
	}
	if (json_dumpf(root, out, JSON_INDENT(2)) || fputc('\n', out) == EOF || fflush(out)) {
		pb_err_set(err, EX_IOERR, "writing the definitions: output error");
		goto out;
	}
	rc = 0;
	goto out;
oom:
	pb_err_set(err, EX_OSERR, "out of memory");
out:
	json_decref(root);
	free(objs);
	return rc;
}
