/* state.c — the daemon's state in one word (status, systemd STATUS=):
 * reads struct consumer only, so every file may call it (status.c's
 * control verbs call runs.c, and runs.c reports its state here). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "consumer.h"
#include "sdnotify.h"

const char *cs_state_name(struct consumer *c)
{
	if (c->stopping)
		return "stopping";
	if (c->run.state != RUN_NONE)
		return "running";
	if (c->hist_active)
		return "catching-up";
	if (!c->up)
		return "connecting";
	if (pb_decide_paused(c->core))
		return "paused";
	if (pb_decide_pending(c->core))
		return "pending";
	return "idle";
}

void cs_sd_status(struct consumer *c)
{
	char line[256];
	const char *state = cs_state_name(c);
	uint64_t events = 0;
	int head;

	if (!strcmp(state, "catching-up"))
		state = "catching up";
	head = snprintf(line, sizeof(line), "STATUS=%s; %s%s", state,
			c->up ? "connected" : "not connected to the broker",
			c->blocked ? " (blocked by the broker)" : "");
	for (int v = 0; v < PB_VERDICT__COUNT; v++)
		events += c->counts[v];
	snprintf(line + head, sizeof(line) - (size_t)head, "; %llu events; last run %s",
		 (unsigned long long)events,
		 c->have_last_run ? c->last_run.status : "none");
	/* an event count is no news */
	if (!strncmp(line, c->sd_status, (size_t)head + 1))
		return;
	snprintf(c->sd_status, sizeof(c->sd_status), "%s", line);
	pb_sd_notify(line);
}
