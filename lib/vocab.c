/* vocab.c — names and parsers of the tables of vocab.h. */
#include "vocab.h"

#include <stddef.h>
#include <string.h>

#define WORD_(name, word) word,

static const char *const kind_words[] = { PB_KINDS(WORD_) };
static const char *const verdict_words[] = { PB_VERDICTS(WORD_) };
static const char *const run_status_words[] = { PB_RUN_STATUSES(WORD_) };
static const char *const reason_words[] = { PB_REASONS(WORD_) };
static const char *const source_words[] = { PB_SOURCES(WORD_) };

_Static_assert(sizeof(kind_words) / sizeof(kind_words[0]) == PB_KIND__COUNT, "kinds");
_Static_assert(sizeof(verdict_words) / sizeof(verdict_words[0]) == PB_VERDICT__COUNT, "verdicts");
_Static_assert(sizeof(run_status_words) / sizeof(run_status_words[0]) == PB_RUN__COUNT,
	       "run statuses");
_Static_assert(sizeof(reason_words) / sizeof(reason_words[0]) == PB_REASON__COUNT, "reasons");
_Static_assert(sizeof(source_words) / sizeof(source_words[0]) == PB_SOURCE__COUNT, "sources");

static const char *word_of(const char *const *words, int n, int i)
{
	return i >= 0 && i < n ? words[i] : "unknown";
}

static int index_of(const char *const *words, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (!strcmp(s, words[i]))
			return i;
	return -1;
}

/* pb_NAME_name and pb_NAME_parse of one list (vocab.h) */
#define VOCAB_FUNCTIONS_(name, type, words, count) \
	const char *pb_##name##_name(enum type x) \
	{ \
		return word_of(words, count, (int)x); \
	} \
	int pb_##name##_parse(const char *s, enum type *out) \
	{ \
		int i = index_of(words, count, s); \
		if (i < 0) \
			return -1; \
		*out = (enum type)i; \
		return 0; \
	}

VOCAB_FUNCTIONS_(kind, pb_kind, kind_words, PB_KIND__COUNT)
VOCAB_FUNCTIONS_(verdict, pb_verdict, verdict_words, PB_VERDICT__COUNT)
VOCAB_FUNCTIONS_(run_status, pb_run_status, run_status_words, PB_RUN__COUNT)
VOCAB_FUNCTIONS_(reason, pb_reason, reason_words, PB_REASON__COUNT)
VOCAB_FUNCTIONS_(source, pb_source, source_words, PB_SOURCE__COUNT)

int pb_run_status_finished(enum pb_run_status s)
{
	switch (s) {
	case PB_RUN_RUNNING:
	case PB_RUN__COUNT:
		return 0;
	case PB_RUN_OK:
	case PB_RUN_FAILED:
	case PB_RUN_INTERRUPTED:
		return 1;
	}
	return 0;
}
