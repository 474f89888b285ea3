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

const char *pb_kind_name(enum pb_kind k)
{
	return word_of(kind_words, PB_KIND__COUNT, (int)k);
}

const char *pb_verdict_name(enum pb_verdict v)
{
	return word_of(verdict_words, PB_VERDICT__COUNT, (int)v);
}

const char *pb_run_status_name(enum pb_run_status s)
{
	return word_of(run_status_words, PB_RUN__COUNT, (int)s);
}

const char *pb_reason_name(enum pb_reason r)
{
	return word_of(reason_words, PB_REASON__COUNT, (int)r);
}

const char *pb_source_name(enum pb_source s)
{
	return word_of(source_words, PB_SOURCE__COUNT, (int)s);
}

int pb_kind_parse(const char *s, enum pb_kind *out)
{
	int i = index_of(kind_words, PB_KIND__COUNT, s);

	if (i < 0)
		return -1;
	*out = (enum pb_kind)i;
	return 0;
}

int pb_verdict_parse(const char *s, enum pb_verdict *out)
{
	int i = index_of(verdict_words, PB_VERDICT__COUNT, s);

	if (i < 0)
		return -1;
	*out = (enum pb_verdict)i;
	return 0;
}

int pb_run_status_parse(const char *s, enum pb_run_status *out)
{
	int i = index_of(run_status_words, PB_RUN__COUNT, s);

	if (i < 0)
		return -1;
	*out = (enum pb_run_status)i;
	return 0;
}

int pb_reason_parse(const char *s, enum pb_reason *out)
{
	int i = index_of(reason_words, PB_REASON__COUNT, s);

	if (i < 0)
		return -1;
	*out = (enum pb_reason)i;
	return 0;
}

int pb_source_parse(const char *s, enum pb_source *out)
{
	int i = index_of(source_words, PB_SOURCE__COUNT, s);

	if (i < 0)
		return -1;
	*out = (enum pb_source)i;
	return 0;
}

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
