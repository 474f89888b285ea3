/* mgmt.h — the one thing provbus-schema asks of RabbitMQ's management
 * HTTP API: a policy. AMQP 0-9-1 cannot set one, and the streams'
 * retention is a policy (docs/protocol.md) so that apply can change it on a
 * stream that exists. Plain HTTP/1.1 over TCP, basic authentication. */
#ifndef PB_SCHEMA_MGMT_H
#define PB_SCHEMA_MGMT_H

#include "err.h"
#include "topology.h"

struct mgmt_target {
	char host[256];
	int port;
	const char *user, *password;
};

/* Fills host and port of m from "http://HOST[:PORT][/]" (port 15672 by
 * default). Returns 0, or -1 with err (EX_USAGE). */
int mgmt_parse_url(const char *url, struct mgmt_target *m, struct pb_err *err);

/* PUT /api/policies/VHOST/NAME for p (apply-to queues, priority 0).
 * Returns 0, or -1 with err: EX_UNAVAILABLE (cannot connect, no
 * answer), EX_NOPERM (401/403: the user needs the policymaker or
 * administrator tag), EX_PROTOCOL (any other answer). */
int mgmt_put_policy(const struct mgmt_target *m, const char *vhost, const struct topo_policy *p,
		    struct pb_err *err);

/* The rabbitmqctl command that sets p, for an operator to run on a
 * broker node when the management API is not there. */
void mgmt_policy_command(const char *vhost, const struct topo_policy *p, char *buf, size_t size);

#endif
