/* timers.h — one list of named deadlines in one clock, for a poll() loop
 * (provbus-consumer's: consumer/daemon.c).
 *
 * Each deadline has a slot (a small integer the caller names, below
 * PB_TIMERS_MAX) and is registered into it when it changes; the loop
 * sleeps until the earliest one (pb_timers_timeout_ms) and then asks
 * which are due. Every deadline is in one clock, the monotonic one: a
 * deadline kept on the wall clock (a lease end, a run due at a wall
 * instant) is turned into it when registered (pb_timers_set_wall).
 *
 * Pure: no clock reads (the instants are passed in), no allocation. */
#ifndef PB_TIMERS_H
#define PB_TIMERS_H

#include <stdint.h>

#define PB_TIMERS_MAX 32
#define PB_TIMER_NONE INT64_MAX	/* a slot with no deadline */

struct pb_timers {
	int64_t at[PB_TIMERS_MAX];	/* mono ms, PB_TIMER_NONE: none */
	const char *name[PB_TIMERS_MAX];	/* for the log; may be NULL */
};

/* Every slot empty. */
void pb_timers_init(struct pb_timers *t);
/* Names a slot (name borrowed: a string literal). */
void pb_timers_name(struct pb_timers *t, int id, const char *name);
/* Registers slot id's deadline: at (mono ms), PB_TIMER_NONE to clear
 * it. A slot out of range is ignored. */
void pb_timers_set(struct pb_timers *t, int id, int64_t at);
void pb_timers_clear(struct pb_timers *t, int id);
/* Registers a wall-clock deadline (PB_TIMER_NONE: none) as a monotonic
 * one, given one instant on both clocks: a deadline already past is due
 * at mono. */
void pb_timers_set_wall(struct pb_timers *t, int id, int64_t wall, int64_t now_wall,
			int64_t mono);
/* The slot's deadline (PB_TIMER_NONE: none or out of range). */
int64_t pb_timers_at(const struct pb_timers *t, int id);
/* 1 when slot id has a deadline at or before mono. */
int pb_timers_due(const struct pb_timers *t, int id, int64_t mono);
/* The earliest deadline, PB_TIMER_NONE for none; *id (may be NULL) its
 * slot (the lowest slot of a tie), -1 for none. */
int64_t pb_timers_next(const struct pb_timers *t, int *id);
/* poll()'s timeout at mono: 0 when a deadline is due, else the ms to
 * the earliest, at most max_ms (also when there is none). */
int pb_timers_timeout_ms(const struct pb_timers *t, int64_t mono, int max_ms);

#endif
