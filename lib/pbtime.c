#include "pbtime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pb_now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int64_t pb_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

char *pb_time_format(int64_t ms, char *buf)
{
	time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int milli = (int)(ms - (int64_t)secs * 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, PB_TIME_BUF, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, milli);
	return buf;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		v = v * 10 + (**p - '0');
	}
	*out = v;
	return 0;
}

static int days_in_month(int y, int mo)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return mo == 2 && leap ? 29 : days[mo - 1];
}

int pb_time_parse_rfc3339(const char *s, int64_t *out, struct pb_err *err)
{
	const char *p = s;
	int y, mo, d, h, mi, sec, frac_ms = 0, off = 0;
	struct tm tm = {0};

	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d))
		goto bad;
	h = mi = sec = 0;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
			goto bad;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &sec))
				goto bad;
		}
		if (*p == '.') {
			int scale = 100;
			p++;
			if (!isdigit((unsigned char)*p))
				goto bad;
			for (; isdigit((unsigned char)*p); p++, scale /= 10)
				frac_ms += (*p - '0') * scale;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '-' ? -1 : 1, oh, om;
			if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
				goto bad;
			if (oh > 23 || om > 59)
				goto bad;
			off = sign * (oh * 60 + om);
		} else if (*p) {
			goto bad;
		}
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
	    sec > 60)
		goto bad;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = ((int64_t)timegm(&tm) - (int64_t)off * 60) * 1000 + frac_ms;
	return 0;
bad:
	return pb_err_set(err, EX_USAGE,
			  "bad time '%s': want RFC 3339 (2026-11-22T03:00:00Z) or relative (-2h, -15m, -30s, -1d)",
			  s);
}

int pb_time_parse(const char *s, int64_t now_ms, int64_t *out, struct pb_err *err)
{
	char *end;
	long long n;
	int64_t unit;

	if (!strcmp(s, "now")) {
		*out = now_ms;
		return 0;
	}
	if (*s != '-' && *s != '+')
		return pb_time_parse_rfc3339(s, out, err);
	if (!isdigit((unsigned char)s[1]))
		goto bad;
	n = strtoll(s + 1, &end, 10);
	if (!strcmp(end, "ms"))
		unit = 1;
	else if (!strcmp(end, "s"))
		unit = 1000;
	else if (!strcmp(end, "m"))
		unit = 60000;
	else if (!strcmp(end, "h"))
		unit = 3600000;
	else if (!strcmp(end, "d"))
		unit = 86400000;
	else if (!strcmp(end, "w"))
		unit = 7 * 86400000LL;
	else
		goto bad;
	if (n > (INT64_MAX / 2) / unit)
		goto bad;
	*out = now_ms + (*s == '-' ? -1 : 1) * n * unit;
	return 0;
bad:
	return pb_err_set(err, EX_USAGE,
			  "bad time '%s': want RFC 3339 (2026-11-22T03:00:00Z) or relative (-2h, -15m, -30s, -1d)",
			  s);
}
