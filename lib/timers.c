/* timers.c — see timers.h. A list of PB_TIMERS_MAX slots, scanned: the
 * loop has about fifteen deadlines, fewer than a heap would pay for. */
#include "timers.h"

#include <stddef.h>

static int in_range(int id)
{
	return id >= 0 && id < PB_TIMERS_MAX;
}

void pb_timers_init(struct pb_timers *t)
{
	for (int i = 0; i < PB_TIMERS_MAX; i++) {
		t->at[i] = PB_TIMER_NONE;
		t->name[i] = NULL;
	}
}

void pb_timers_name(struct pb_timers *t, int id, const char *name)
{
	if (in_range(id))
		t->name[id] = name;
}

void pb_timers_set(struct pb_timers *t, int id, int64_t at)
{
	if (in_range(id))
		t->at[id] = at;
}

void pb_timers_clear(struct pb_timers *t, int id)
{
	pb_timers_set(t, id, PB_TIMER_NONE);
}

void pb_timers_set_wall(struct pb_timers *t, int id, int64_t wall, int64_t now_wall,
			int64_t mono)
{
	if (wall == PB_TIMER_NONE)
		pb_timers_set(t, id, PB_TIMER_NONE);
	else
		pb_timers_set(t, id, wall <= now_wall ? mono : mono + (wall - now_wall));
}

int64_t pb_timers_at(const struct pb_timers *t, int id)
{
	return in_range(id) ? t->at[id] : PB_TIMER_NONE;
}

int pb_timers_due(const struct pb_timers *t, int id, int64_t mono)
{
	return in_range(id) && t->at[id] != PB_TIMER_NONE && t->at[id] <= mono;
}

int64_t pb_timers_next(const struct pb_timers *t, int *id)
{
	int64_t best = PB_TIMER_NONE;
	int best_id = -1;

	for (int i = 0; i < PB_TIMERS_MAX; i++)
		if (t->at[i] < best) {
			best = t->at[i];
			best_id = i;
		}
	if (id)
		*id = best_id;
	return best;
}

int pb_timers_timeout_ms(const struct pb_timers *t, int64_t mono, int max_ms)
{
	int64_t next = pb_timers_next(t, NULL);

	if (max_ms < 0)
		max_ms = 0;
	if (next == PB_TIMER_NONE)
		return max_ms;
	if (next <= mono)
		return 0;
	return next - mono > max_ms ? max_ms : (int)(next - mono);
}
