/* t.h - a tiny assert header for unit tests. */
#ifndef AK_T_H
#define AK_T_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failed, t_checks;
#define CHECK(cond) do { t_checks++; if (!(cond)) { t_failed++; \
	fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_EQ(a, b) do { long long _a = (long long)(a), _b = (long long)(b); t_checks++; \
	if (_a != _b) { t_failed++; fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", \
	__FILE__, __LINE__, #a, _a, #b, _b); } } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); t_checks++; \
	if (!_a || !_b || strcmp(_a, _b) != 0) { t_failed++; fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", \
	__FILE__, __LINE__, #a, _a ? _a : "(null)", _b ? _b : "(null)"); } } while (0)
#define T_DONE() do { printf("%d checks, %d failed\n", t_checks, t_failed); return t_failed ? 1 : 0; } while (0)
#endif
