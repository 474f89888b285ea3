/* vocab.h — the words provbus writes and reads back: event kinds, verdicts,
 * run statuses, run reasons and event sources. Each list is one table (an
 * X-macro) and everything else comes from it: the enums, the names and parsers below,
 * the daemon's counts and `status` (JSON, Prometheus, systemd's STATUS=),
 * the audit log's rows, `provbus-audit events --verdict`, `explain` and
 * `timeline`, and `provbus-audit --help` (which the bash completion is
 * checked against by tests/integration/t-completion.sh).
 *
 * X(NAME, "word"): NAME gives the enum constant (PB_VERDICT_NAME, ...),
 * "word" what the audit log, the logs and the wire say. The order is the
 * order of every listing (status counts, --help, the timeline's legend);
 * the enum values are indices in memory only, never stored: the audit log
 * stores the words.
 *
 * Adding a word: a line here; then build: every switch on these enums
 * has no default, so -Wswitch names each place that must decide what the
 * new word means (a colour, a count, ...). A kind reaches the routing
 * keys by itself (the consumer's bindings, the history stream's bindings
 * and the topic permissions of broker-schema/ loop over the table): a
 * topology exported before must be exported and applied again. Then the
 * places that cannot read this header:
 *   - a verdict or run status the audit log filters on in SQL: the quoted
 *     words in lib/audit.c (partial index, queries);
 *   - deploy/completion/provbus.bash's --verdict words (the test fails
 *     until they match);
 *   - the docs (docs/man, docs/protocol.md).
 */
#ifndef PB_VOCAB_H
#define PB_VOCAB_H

/* an event's kind (the KIND of REGION.KIND.KEY and the body's "kind") */
#define PB_KINDS(X) \
	X(PROVIDES, "provides") \
	X(RETIRE, "retire")

/* what the consumer made of an event (audit log events.verdict) */
#define PB_VERDICTS(X) \
	X(APPLIED, "applied") \
	X(DUPLICATE, "duplicate") \
	X(STALE, "stale") \
	X(FOREIGN, "foreign") \
	X(EXPIRED, "expired") \
	X(INVALID, "invalid")

/* a run's status (audit log runs.status): running until it finishes */
#define PB_RUN_STATUSES(X) \
	X(OK, "ok") \
	X(FAILED, "failed") \
	X(INTERRUPTED, "interrupted") \
	X(RUNNING, "running")

/* where an event row came from (audit log events.source): the node's
 * queue, the history stream (catch-up), or the daemon itself (an expiry) */
#define PB_SOURCES(X) \
	X(LIVE, "live") \
	X(HISTORY, "history") \
	X(DAEMON, "daemon")

/* why a run started (audit log runs.reason, $PROVBUS_REASON) */
#define PB_REASONS(X) \
	X(STARTUP, "startup") \
	X(CHANGE, "change") \
	X(RESUME, "resume") \
	X(MANUAL, "manual") \
	X(RETRY, "retry") \
	X(EXPIRY, "expiry")

#define PB_VOCAB_ENUM_(prefix, name, word) prefix##name,
#define PB_KIND_ENUM_(name, word) PB_VOCAB_ENUM_(PB_KIND_, name, word)
#define PB_VERDICT_ENUM_(name, word) PB_VOCAB_ENUM_(PB_VERDICT_, name, word)
#define PB_RUN_ENUM_(name, word) PB_VOCAB_ENUM_(PB_RUN_, name, word)
#define PB_REASON_ENUM_(name, word) PB_VOCAB_ENUM_(PB_REASON_, name, word)
#define PB_SOURCE_ENUM_(name, word) PB_VOCAB_ENUM_(PB_SOURCE_, name, word)

enum pb_kind { PB_KINDS(PB_KIND_ENUM_) PB_KIND__COUNT };
enum pb_verdict { PB_VERDICTS(PB_VERDICT_ENUM_) PB_VERDICT__COUNT };
enum pb_run_status { PB_RUN_STATUSES(PB_RUN_ENUM_) PB_RUN__COUNT };
enum pb_reason { PB_REASONS(PB_REASON_ENUM_) PB_REASON__COUNT };
enum pb_source { PB_SOURCES(PB_SOURCE_ENUM_) PB_SOURCE__COUNT };

/* The word of a value ("provides", "applied", "ok", "startup", ...); a
 * value out of range gives "unknown". Static strings. */
const char *pb_kind_name(enum pb_kind k);
const char *pb_verdict_name(enum pb_verdict v);
const char *pb_run_status_name(enum pb_run_status s);
const char *pb_reason_name(enum pb_reason r);
const char *pb_source_name(enum pb_source s);

/* The value of a word: 0, or -1 (*out untouched) when s is NULL or no
 * word of the list. */
int pb_kind_parse(const char *s, enum pb_kind *out);
int pb_verdict_parse(const char *s, enum pb_verdict *out);
int pb_run_status_parse(const char *s, enum pb_run_status *out);
int pb_reason_parse(const char *s, enum pb_reason *out);
int pb_source_parse(const char *s, enum pb_source *out);

/* 1 when a run with this status is over (every status but running). */
int pb_run_status_finished(enum pb_run_status s);

/* Lists as strings, built by the preprocessor: "applied, duplicate,
 * stale, ..." for messages, "provides|retire" for a regular expression
 * (the topic permissions of broker-schema/export.c). */
#define PB_VOCAB_COMMA_(name, word) ", " word
#define PB_VOCAB_BAR_(name, word) "|" word
#define PB_VERDICT_LIST (PB_VERDICTS(PB_VOCAB_COMMA_) + 2)
#define PB_KIND_ALTERNATION (PB_KINDS(PB_VOCAB_BAR_) + 1)

#endif
