/* acks.c — the acks owed for committed audit rows, sent on the current
 * connection (ingest.c after each commit, broker.c before it lets a
 * connection go). A failure marks the connection lost (c->lost); the
 * broker side drops it at its next tick, so this file calls neither. */
#include <stdio.h>

#include "consumer.h"

void cs_acks_flush(struct consumer *c)
{
	struct pb_err e = PB_ERR_INIT;
	amqp_connection_state_t cn = c->sess ? pb_session_conn(c->sess) : NULL;

	for (int ch = CS_LIVE_CHANNEL; ch <= CS_HIST_CHANNEL; ch++) {
		struct cs_acks *a = &c->acks[ch];
		int st = AMQP_STATUS_OK;

		if (!c->sess || !pb_session_connected(c->sess))
			break;
		for (size_t i = 0; i < a->n_rejects && st == AMQP_STATUS_OK; i++)
			st = amqp_basic_reject(cn, (amqp_channel_t)ch, a->rejects[i], 0);
		if (st == AMQP_STATUS_OK && a->max_valid)
			st = amqp_basic_ack(cn, (amqp_channel_t)ch, a->max_valid, 1);
		a->n_rejects = 0;
		a->max_valid = 0;
		a->n_unacked = 0;
		if (st != AMQP_STATUS_OK && !c->lost) {
			pb_amqp_status_err(st, "acknowledging deliveries", &e);
			snprintf(c->lost_why, sizeof(c->lost_why), "%s", e.msg);
			c->lost = 1;
		}
	}
}
