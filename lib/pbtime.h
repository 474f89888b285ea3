/* pbtime.h — clocks and time text. All times are int64 milliseconds. */
#ifndef PB_TIME_H
#define PB_TIME_H

#include <stdint.h>

#include "err.h"

#define PB_TIME_NEVER INT64_MAX
#define PB_TIME_BUF 96

/* Wall clock (CLOCK_REALTIME), ms since the epoch. */
int64_t pb_now_ms(void);
/* Monotonic clock (CLOCK_MONOTONIC), ms; for timeouts and durations. */
int64_t pb_mono_ms(void);

/* Formats ms since the epoch as RFC 3339 UTC with milliseconds,
 * "2026-11-22T03:00:00.123Z", into buf (PB_TIME_BUF bytes); returns buf. */
char *pb_time_format(int64_t ms, char *buf);

/* Parses RFC 3339 ("2026-11-22T03:00:00Z", fractional seconds and
 * "+hh:mm" offsets allowed, "T" or a space) into ms since the epoch.
 * Returns 0, or -1 with EX_USAGE naming the text. */
int pb_time_parse_rfc3339(const char *s, int64_t *out, struct pb_err *err);

/* Parses a time expression: RFC 3339, or relative to now_ms as
 * "-2h", "-15m", "-30s", "-1d", "-500ms" (also "+…", and "now").
 * Returns 0, or -1 with EX_USAGE naming the text and the forms accepted. */
int pb_time_parse(const char *s, int64_t now_ms, int64_t *out, struct pb_err *err);

#endif
