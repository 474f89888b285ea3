/* log.h — one line per event, key=value fields, never a password.
 *
 * Lines go to stderr as "PROG: LEVEL: message". Under systemd
 * (JOURNAL_STREAM or NOTIFY_SOCKET set) each line starts with the syslog
 * priority "<N>" instead, which journald understands. The message is
 * printed escaped (textesc.h): a newline or any control character in it,
 * from an event, a report or a run's output, never reaches the terminal
 * or the journal raw. */
#ifndef PB_LOG_H
#define PB_LOG_H

enum pb_log_level {
	PB_LOG_ERR = 3,
	PB_LOG_WARN = 4,
	PB_LOG_NOTICE = 5,
	PB_LOG_INFO = 6,
	PB_LOG_DEBUG = 7,
};

/* verbosity: 0 shows notice and above, 1 (-v) adds info, 2 (-vv) debug. */
void pb_log_init(const char *prog, int verbosity);
int pb_log_enabled(int level);
void pb_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pb_log_err(...) pb_log(PB_LOG_ERR, __VA_ARGS__)
#define pb_log_warn(...) pb_log(PB_LOG_WARN, __VA_ARGS__)
#define pb_log_notice(...) pb_log(PB_LOG_NOTICE, __VA_ARGS__)
#define pb_log_info(...) pb_log(PB_LOG_INFO, __VA_ARGS__)
#define pb_log_debug(...) pb_log(PB_LOG_DEBUG, __VA_ARGS__)

#endif
