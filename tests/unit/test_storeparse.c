/* test_storeparse.c - the plaintext document read one profile at a time (ak_store_parse) against the
 * reader that parses the whole document into one cJSON tree (ak_store_parse_whole): the same store and
 * the same error for every input, valid or not; and the parse memory stays one profile's. */
#include <stdint.h>

#include <sodium.h>

#include <cjson/cJSON.h>

#include "ak_edit.h"
#include "ak_rotate.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "t.h"

static size_t cases;

/* Both readers on doc: the same verdict, and for a store, the same document when serialized again.
 * Returns the verdict. */
static enum ak_err
same(const char *doc, size_t len)
{
	struct ak_store *a = NULL, *b = NULL;
	char *da = NULL, *db = NULL;
	size_t la = 0, lb = 0;
	enum ak_err ra, rb;

	cases++;
	ra = ak_store_parse(doc, len, &a);
	rb = ak_store_parse_whole(doc, len, &b);
	if (ra != rb)
		fprintf(stderr, "readers differ (%d, whole %d) on %zu bytes: %.*s\n", ra, rb, len,
		    len > 300 ? 300 : (int)len, doc);
	CHECK_EQ(ra, rb);
	CHECK((ra == AK_OK) == (a != NULL));
	if (ra == AK_OK && rb == AK_OK) {
		CHECK_EQ(ak_store_serialize(a, &da, &la), AK_OK);
		CHECK_EQ(ak_store_serialize(b, &db, &lb), AK_OK);
		CHECK(la == lb && da != NULL && db != NULL && memcmp(da, db, la) == 0);
		ak_smem_free(da);
		ak_smem_free(db);
	}
	ak_store_free(a);
	ak_store_free(b);
	return ra;
}

static enum ak_err
same_str(const char *doc)
{
	return same(doc, strlen(doc));
}

/* A store whose document has every kind of field: variables plain and secret, previous values of the
 * main secret and of a variable, a deactivation hint, the policies. */
static char *
sample(size_t *len)
{
	static const char doc[] =
	    "{\"version\":3,\"profiles\":["
	    "{\"name\":\"zeta\",\"provider\":\"openai\",\"secret_var\":\"OPENAI_API_KEY\",\"secret\":\"sk-zz\","
	    "\"description\":\"d\\\"q\\u00e9\",\"source\":\"\",\"created\":1700000000,\"rotated\":1700000100,"
	    "\"vars\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"S\",\"value\":\"v2\",\"secret\":true,"
	    "\"previous\":{\"value\":\"v1\",\"rotated\":5,\"until\":9}}],"
	    "\"previous\":{\"value\":\"sk-old\",\"rotated\":1700000100,\"until\":1700086500,"
	    "\"deactivate\":\"sk-ant-api03-R2D...igAA\"},"
	    "\"rotate_every\":86400,\"confirm\":true,\"lifetime\":3600},"
	    "{\"name\":\"alpha\",\"provider\":\"anthropic\",\"secret_var\":\"ANTHROPIC_API_KEY\","
	    "\"secret\":\"sk-ant-x\",\"description\":\"\",\"source\":\"aws://x\",\"created\":1,\"rotated\":2,"
	    "\"vars\":[]}]}";
	char *d;

	*len = sizeof(doc) - 1;
	if ((d = malloc(sizeof(doc))) == NULL)
		abort();
	memcpy(d, doc, sizeof(doc));
	return d;
}

static void
test_valid_forms(void)
{
	size_t len, i, n;
	char *doc = sample(&len), *t;
	cJSON *j;
	struct ak_store *s = NULL;

	CHECK_EQ(same(doc, len), AK_OK);
	/* Read sorted, whatever the order in the file. */
	CHECK_EQ(ak_store_parse(doc, len, &s), AK_OK);
	CHECK(s != NULL && s->n == 2 && strcmp(s->p[0]->name, "alpha") == 0);
	CHECK(s != NULL && s->p[1]->nvars == 2 && s->p[1]->vars[1].rot.prev != NULL &&
	    strcmp(s->p[1]->vars[1].rot.prev, "v1") == 0 && s->p[1]->confirm == 1);
	ak_store_free(s);
	/* Formatted by cJSON (tabs, newlines), and every field of the profiles in the reverse order. */
	CHECK((j = cJSON_Parse(doc)) != NULL);
	CHECK((t = cJSON_Print(j)) != NULL);
	CHECK_EQ(same_str(t), AK_OK);
	cJSON_free(t);
	{
		cJSON *r = cJSON_CreateObject(), *arr = cJSON_CreateArray(), *o, *f;

		/* profiles before version, each profile's keys reversed */
		cJSON_ArrayForEach(o, cJSON_GetObjectItem(j, "profiles")) {
			cJSON *p = cJSON_CreateObject();
			size_t k, m = (size_t)cJSON_GetArraySize(o);

			for (k = m; k > 0; k--) {
				f = cJSON_GetArrayItem(o, (int)(k - 1));
				cJSON_AddItemToObject(p, f->string, cJSON_Duplicate(f, 1));
			}
			cJSON_AddItemToArray(arr, p);
		}
		cJSON_AddItemToObject(r, "profiles", arr);
		cJSON_AddNumberToObject(r, "version", 2);
		CHECK((t = cJSON_PrintUnformatted(r)) != NULL);
		CHECK_EQ(same_str(t), AK_OK);
		cJSON_free(t);
		cJSON_Delete(r);
	}
	cJSON_Delete(j);
	/* Whitespace (every byte cJSON skips: 1 to 32) inserted at every position: wherever it is legal
	 * both readers take it; inside a string or a number both see the same other document. */
	t = malloc(len + 40);
	for (i = 0; i <= len; i++) {
		static const char ws[] = "\x01\x1f \t\r\n";

		memcpy(t, doc, i);
		memcpy(t + i, ws, sizeof(ws) - 1);
		memcpy(t + i + sizeof(ws) - 1, doc + i, len - i);
		n = len + sizeof(ws) - 1;
		(void)same(t, n);
	}
	/* A byte-order mark opens a document for both, and is refused elsewhere by both. */
	for (i = 0; i <= len; i++) {
		memcpy(t, doc, i);
		memcpy(t + i, "\xef\xbb\xbf", 3);
		memcpy(t + i + 3, doc + i, len - i);
		if (i == 0)
			CHECK_EQ(same(t, len + 3), AK_OK);
		else
			(void)same(t, len + 3);
	}
	free(t);
	free(doc);
	/* The mark must be the very first bytes; a document may end inside one. */
	CHECK_EQ(same_str("\xef\xbb\xbf {\"version\":1,\"profiles\":[]}"), AK_OK);
	CHECK_EQ(same_str(" \xef\xbb\xbf{\"version\":1,\"profiles\":[]}"), AK_ERR_BAD_FORMAT);
	CHECK_EQ(same_str("\xef\xbb"), AK_ERR_BAD_FORMAT);
	CHECK_EQ(same_str("\xef"), AK_ERR_BAD_FORMAT);
	/* Escapes in the top-level keys are decoded by cJSON in both. */
	CHECK_EQ(same_str("{\"vers\\u0069on\":1,\"prof\\u0069les\":[]}"), AK_OK);
	CHECK_EQ(same_str(" \n{ \"profiles\" : [ ] , \"version\" : 2.0 } \n"), AK_OK);
	CHECK_EQ(same_str("{\"version\":1e0,\"profiles\":[]}"), AK_OK);
}

static void
test_cut_and_bent(void)
{
	static const char subst[] = " \t{}[],:\"0-xe\\\xef";
	size_t len, i, k;
	char *doc = sample(&len), *t;

	/* Cut at every byte: never a store, always the whole reader's verdict. */
	for (i = 0; i < len; i++)
		CHECK(same(doc, i) != AK_OK);
	/* Every byte replaced by each of the characters that matter to the structure. */
	t = malloc(len + 1);
	for (i = 0; i < len; i++) {
		for (k = 0; k < sizeof(subst) - 1; k++) {
			memcpy(t, doc, len + 1);
			t[i] = subst[k];
			(void)same(t, len);
		}
		/* and deleted */
		memcpy(t, doc, i);
		memcpy(t + i, doc + i + 1, len - i);
		(void)same(t, len - 1);
	}
	free(t);
	free(doc);
}

static void
test_errors(void)
{
	static const char *const docs[] = {
		"", "{", "}", "{}", "[]", "null", "3", "\"version\"",
		"{\"version\":3}", "{\"profiles\":[]}",
		"{\"version\":3,\"profiles\":[]", "{\"version\":3,\"profiles\":[]}x", "{\"version\":3,\"profiles\":[]},",
		"{\"version\":3,\"profiles\":[],}", "{,\"version\":3,\"profiles\":[]}",
		"{\"version\":3,\"version\":3,\"profiles\":[]}", "{\"version\":3,\"profiles\":[],\"profiles\":[]}",
		"{\"version\":3,\"profiles\":[],\"x\":1}", "{\"x\":1,\"version\":3,\"profiles\":[]}",
		"{\"version\":\"3\",\"profiles\":[]}", "{\"version\":[3],\"profiles\":[]}",
		"{\"version\":3,\"profiles\":{}}", "{\"version\":3,\"profiles\":null}",
		"{\"version\":3,\"profiles\":[,]}", "{\"version\":3,\"profiles\":[1,]}",
		"{\"version\":3,\"profiles\":[1 2]}", "{\"version\":3 \"profiles\":[]}",
		"{\"version\" 3,\"profiles\":[]}", "{version:3,\"profiles\":[]}",
		"{\"version\":3,\"profiles\":[1]}", "{\"version\":3,\"profiles\":[{}]}",
		"{\"version\":3,\"profiles\":[[]]}",
		/* an unknown version wins over a bad profile, wherever the version is */
		"{\"version\":4,\"profiles\":[1,{},[]]}", "{\"profiles\":[1,{},[]],\"version\":4}",
		"{\"version\":0,\"profiles\":[]}", "{\"version\":-1,\"profiles\":[]}",
		"{\"version\":3.5,\"profiles\":[]}",
		/* but not over broken JSON, or a bad top level */
		"{\"version\":4,\"profiles\":[1,{]}", "{\"profiles\":[1,{}],\"version\":4,\"x\":0}",
		"{\"version\":4,\"profiles\":{}}", "{\"version\":4,\"profiles\":[tru]}",
		"{\"version\":3,\"profiles\":[\"\\ud800\"]}", "{\"version\":3,\"profiles\":[1.2.3]}",
	};
	size_t i;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		(void)same_str(docs[i]);
	CHECK_EQ(same_str("{\"version\":4,\"profiles\":[1,{},[]]}"), AK_ERR_VERSION);
	CHECK_EQ(same_str("{\"profiles\":[1,{},[]],\"version\":4}"), AK_ERR_VERSION);
	CHECK_EQ(same_str("{\"version\":4,\"profiles\":[1,{]}"), AK_ERR_BAD_FORMAT);
	CHECK_EQ(same_str("{\"version\":3,\"profiles\":[1]}"), AK_ERR_BAD_FORMAT);
}

/* A profile element nested d deep ([[[...]]]), under a version the reader does not know: cJSON refuses
 * nesting past its limit from the document's root, so the whole reader says BAD_FORMAT there and
 * VERSION below it; one profile at a time must agree at each depth. */
static void
test_depth(void)
{
	size_t d, len;
	char *t;
	enum ak_err r, prev = AK_OK;
	int changed = 0;

	for (d = CJSON_NESTING_LIMIT - 5; d <= CJSON_NESTING_LIMIT + 2; d++) {
		t = malloc(2 * d + 64);
		len = (size_t)sprintf(t, "{\"version\":9,\"profiles\":[");
		memset(t + len, '[', d);
		memset(t + len + d, ']', d);
		len += 2 * d;
		len += (size_t)sprintf(t + len, "]}");
		r = same(t, len);
		CHECK(r == AK_ERR_VERSION || r == AK_ERR_BAD_FORMAT);
		if (d > CJSON_NESTING_LIMIT - 5 && r != prev)
			changed++;
		prev = r;
		free(t);
	}
	CHECK_EQ(changed, 1); /* the limit was crossed in the range tried */
}

/* Profiles with the largest values and the most variables a profile may have, one past each limit, and
 * a store of a few thousand: the parse memory (the scratch arena) is back to nothing after each. */
static void
test_huge(void)
{
	struct ak_smem_stats st0, st;
	size_t cap = 6u << 20, len, i, j;
	char *t = malloc(cap);
	struct ak_store *s = NULL;
	int extra;

	ak_smem_stats(&st0);
	for (extra = 0; extra <= 1; extra++) {
		len = (size_t)sprintf(t, "{\"version\":3,\"profiles\":[{\"name\":\"big\",\"provider\":\"p\","
		    "\"secret_var\":\"K\",\"secret\":\"");
		memset(t + len, 's', AK_VALUE_MAX + (size_t)extra);
		len += AK_VALUE_MAX + (size_t)extra;
		len += (size_t)sprintf(t + len, "\",\"description\":\"\",\"source\":\"\",\"created\":1,"
		    "\"rotated\":2,\"vars\":[");
		for (i = 0; i < AK_VARS_MAX; i++) {
			len += (size_t)sprintf(t + len, "%s{\"name\":\"V%zu\",\"value\":\"", i ? "," : "", i);
			/* escaped bytes: the tree holds them decoded */
			for (j = 0; j < AK_VALUE_MAX / 2; j++) {
				memcpy(t + len, "\\n", 2);
				len += 2;
			}
			len += (size_t)sprintf(t + len, "\"}");
		}
		len += (size_t)sprintf(t + len, "]},{\"name\":\"small\",\"provider\":\"p\",\"secret_var\":\"K\","
		    "\"secret\":\"x\",\"description\":\"\",\"source\":\"\",\"created\":1,\"rotated\":2,\"vars\":[]}]}");
		CHECK(len < cap);
		CHECK_EQ(same(t, len), extra ? AK_ERR_BAD_FORMAT : AK_OK);
		ak_smem_stats(&st);
		CHECK_EQ(st.scratch_slab_bytes, st0.scratch_slab_bytes);
		CHECK_EQ(st.scratch_in_use, st0.scratch_in_use);
	}
	/* 3000 profiles in reverse order, every few with variables */
	len = (size_t)sprintf(t, "{\"profiles\":[");
	for (i = 3000; i > 0; i--)
		len += (size_t)sprintf(t + len, "%s{\"name\":\"p%05zu\",\"provider\":\"anthropic\","
		    "\"secret_var\":\"ANTHROPIC_API_KEY\",\"secret\":\"sk-ant-%zu\",\"description\":\"\","
		    "\"source\":\"\",\"created\":%zu,\"rotated\":%zu,\"vars\":[%s]}", i < 3000 ? "," : "", i, i,
		    i, i, i % 7 ? "" : "{\"name\":\"M\",\"value\":\"m\"}");
	len += (size_t)sprintf(t + len, "],\"version\":3}");
	CHECK_EQ(same(t, len), AK_OK);
	CHECK_EQ(ak_store_parse(t, len, &s), AK_OK);
	CHECK(s != NULL && s->n == 3000 && strcmp(s->p[0]->name, "p00001") == 0 &&
	    ak_store_find(s, "p02999") != NULL && ak_store_find(s, "p00007")->nvars == 1);
	ak_store_free(s);
	ak_smem_stats(&st);
	CHECK_EQ(st.scratch_slab_bytes, st0.scratch_slab_bytes);
	/* a duplicate name among them, far from its twin */
	memcpy(strstr(t, "p00002"), "p02998", 6);
	CHECK_EQ(same(t, len), AK_ERR_BAD_FORMAT);
	free(t);
}

/* One more profile than a keystore may hold: too many, before anything else about them. */
static void
test_too_many(void)
{
	size_t n = AK_PROFILES_MAX + 1, len, i;
	char *t = malloc(4 * n + 64);

	len = (size_t)sprintf(t, "{\"version\":3,\"profiles\":[");
	for (i = 0; i < n; i++) {
		memcpy(t + len, i ? ",{}" : "{}", i ? 3 : 2);
		len += i ? 3 : 2;
	}
	len += (size_t)sprintf(t + len, "]}");
	CHECK_EQ(same(t, len), AK_ERR_BAD_FORMAT);
	memcpy(t, "{\"version\":5", 12);
	CHECK_EQ(same(t, len), AK_ERR_VERSION);
	free(t);
}

/* 1 when the n bytes at q are all zero. */
static int
zeroed(const char *q, size_t n)
{
	while (n > 0 && *q == 0) {
		q++;
		n--;
	}
	return n == 0;
}

/* A profile read from the store is one block; every way of changing one works on it as on any other,
 * and what it replaces is wiped where it was. */
static void
test_packed_edits(void)
{
	struct ak_smem_stats st0, st;
	struct ak_store *s = NULL, *t = NULL;
	struct ak_profile *p, *d;
	size_t len, olen;
	char *doc = sample(&len), *old, *out = NULL;
	struct ak_var *oldvars;

	ak_smem_trim();
	ak_smem_stats(&st0);
	CHECK_EQ(ak_store_parse(doc, len, &s), AK_OK);
	CHECK(s != NULL && (p = ak_store_find(s, "zeta")) != NULL);
	if (s == NULL || p == NULL) {
		free(doc);
		return;
	}
	CHECK(p->pack != 0);
	/* every string field replaced */
	old = p->secret;
	olen = strlen(old);
	CHECK_EQ(ak_profile_set_field(&p->secret, "sk-replaced"), AK_OK);
	CHECK(zeroed(old, olen));
	CHECK_STR(p->secret, "sk-replaced");
	old = p->description;
	olen = strlen(old);
	CHECK_EQ(ak_profile_set_field(&p->description, "new description"), AK_OK);
	CHECK(zeroed(old, olen));
	CHECK_EQ(ak_profile_set_field(&p->provider, "anthropic"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->source, "gcp://x"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->secret_var, "ZETA_KEY"), AK_OK);
	/* a variable's value replaced, one added (the array leaves the pack), one removed */
	old = ak_profile_find_var(p, "A")->value;
	CHECK_EQ(ak_profile_set_var(p, "A", "2"), AK_OK);
	CHECK(zeroed(old, 1));
	oldvars = p->vars;
	CHECK_EQ(ak_profile_put_var(p, "NEW", "n", 0), AK_OK);
	CHECK(p->vars != oldvars && zeroed((const char *)oldvars, 2 * sizeof(*oldvars)));
	old = ak_profile_find_var(p, "S")->value;
	CHECK_EQ(ak_profile_unset_var(p, "S"), AK_OK);
	CHECK(zeroed(old, 2));
	CHECK_EQ(p->nvars, 2);
	CHECK_STR(ak_profile_plain_value(p, "A"), "2");
	CHECK_STR(ak_profile_plain_value(p, "NEW"), "n");
	/* a rotation keeps the old secret as previous, a copy is whole */
	CHECK_EQ(ak_rot_apply(p, AK_EDIT_ROTATE, "ZETA_KEY", "sk-rotated", 1800000000), AK_OK);
	CHECK_STR(p->secret, "sk-rotated");
	CHECK(p->rot.prev != NULL && strcmp(p->rot.prev, "sk-replaced") == 0);
	CHECK((d = ak_profile_dup(p)) != NULL);
	CHECK(d != NULL && d->pack == 0 && strcmp(d->secret, "sk-rotated") == 0 &&
	    ak_profile_validate(d) == AK_OK);
	ak_profile_free(d);
	/* renamed: the store stays sorted and findable */
	CHECK_EQ(ak_store_rename(s, "zeta", "beta", 0), AK_OK);
	CHECK(ak_store_find(s, "beta") != NULL && ak_store_find(s, "zeta") == NULL);
	/* and all of it reads back */
	CHECK_EQ(ak_store_serialize(s, &out, &len), AK_OK);
	CHECK_EQ(ak_store_parse(out, len, &t), AK_OK);
	CHECK(t != NULL && (p = ak_store_find(t, "beta")) != NULL && strcmp(p->secret, "sk-rotated") == 0 &&
	    strcmp(p->description, "new description") == 0 && strcmp(p->secret_var, "ZETA_KEY") == 0 &&
	    p->nvars == 2);
	ak_smem_free(out);
	ak_store_free(t);
	ak_store_free(s);
	ak_smem_trim();
	ak_smem_stats(&st);
	CHECK_EQ(st.in_use, st0.in_use);
	free(doc);
}

int
main(void)
{
	if (ak_smem_init() != 0) {
		fprintf(stderr, "ak_smem_init failed\n");
		return 1;
	}
	ak_smem_hook_cjson();
	test_valid_forms();
	test_cut_and_bent();
	test_errors();
	test_depth();
	test_huge();
	test_too_many();
	test_packed_edits();
	printf("%zu documents read by both readers\n", cases);
	T_DONE();
}
