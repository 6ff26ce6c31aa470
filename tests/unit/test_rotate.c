/* test_rotate.c - rotation through the edit path: rotate, grace, rollback, finish, policy; expiry;
 * the previous view served by GET_PREVIOUS; the document keeps previous values and the policy. */
#include <stdio.h>
#include <string.h>

#include "ak_edit.h"
#include "ak_rotate.h"
#include "ak_smem.h"
#include "ak_store.h"
#include "ak_util.h"
#include "t.h"

static struct ak_store *
sample_store(void)
{
	struct ak_store *s = ak_store_new();
	struct ak_profile *p = ak_profile_new();

	CHECK(s != NULL && p != NULL);
	CHECK_EQ(ak_profile_set_field(&p->name, "prod"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->provider, "anthropic"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->secret_var, "ANTHROPIC_API_KEY"), AK_OK);
	CHECK_EQ(ak_profile_set_field(&p->secret, "key-one"), AK_OK);
	CHECK_EQ(ak_profile_put_var(p, "DB_PASSWORD", "pw-one", 1), AK_OK);
	CHECK_EQ(ak_profile_put_var(p, "MODEL", "opus", 0), AK_OK);
	CHECK_EQ(ak_store_put(s, p, 0), AK_OK);
	return s;
}

static enum ak_err
edit1(struct ak_store *s, uint8_t kind, const char *arg, const char *value)
{
	struct ak_edit *e = ak_edit_new("prod");
	enum ak_err r;

	if ((r = ak_edit_add(e, kind, arg, value)) == AK_OK)
		r = ak_edit_apply(s, e);
	ak_edit_free(e);
	return r;
}

static void
test_cycle(void)
{
	struct ak_store *s = sample_store(), *back = NULL;
	struct ak_profile *p, *v = NULL;
	char *doc = NULL;
	size_t len;
	int64_t now = ak_now_s();

	CHECK_EQ(edit1(s, AK_EDIT_FINISH, "", NULL), AK_ERR_NO_PREVIOUS);
	CHECK_EQ(edit1(s, AK_EDIT_ROLLBACK, "", NULL), AK_ERR_NO_PREVIOUS);
	CHECK_EQ(ak_profile_previous_view(ak_store_find(s, "prod"), now, &v), AK_ERR_NO_PREVIOUS);
	CHECK(v == NULL);
	CHECK_EQ(edit1(s, AK_EDIT_ROTATE, "", "key-one"), AK_ERR_SAME_SECRET);
	CHECK_EQ(edit1(s, AK_EDIT_ROTATE, "MODEL", "x"), AK_ERR_INVALID);
	CHECK_EQ(edit1(s, AK_EDIT_ROTATE, "NOPE", "x"), AK_ERR_NO_VAR);
	CHECK_EQ(edit1(s, AK_EDIT_ROTATE, "", "key-two"), AK_OK);
	p = ak_store_find(s, "prod");
	CHECK_STR(p->secret, "key-two");
	CHECK_STR(p->rot.prev, "key-one");
	CHECK(p->rot.until >= now + AK_GRACE_DEFAULT_S);
	CHECK_EQ(ak_profile_next_expiry(p), p->rot.until);
	CHECK_EQ(edit1(s, AK_EDIT_ROTATE, "DB_PASSWORD", "pw-two"), AK_OK);
	CHECK_EQ(edit1(s, AK_EDIT_GRACE, "DB_PASSWORD", "10"), AK_OK);
	p = ak_store_find(s, "prod");
	CHECK_EQ(ak_store_next_expiry(s), p->vars[0].rot.until);
	/* The previous view: both secrets swapped, the plain variable as it is, no previous inside. */
	CHECK_EQ(ak_profile_previous_view(p, now, &v), AK_OK);
	CHECK_STR(v->secret, "key-one");
	CHECK_STR(v->vars[0].value, "pw-one");
	CHECK_STR(v->vars[1].value, "opus");
	CHECK(v->rot.prev == NULL && v->vars[0].rot.prev == NULL);
	ak_profile_free(v);
	v = NULL;
	/* The document keeps previous values and the policy. */
	CHECK_EQ(edit1(s, AK_EDIT_ROTATE_EVERY, "7776000", NULL), AK_OK);
	/* ...and the use policies (confirm-on-use, the profile's own lifetime). */
	CHECK_EQ(edit1(s, AK_EDIT_CONFIRM, "1", NULL), AK_OK);
	CHECK_EQ(edit1(s, AK_EDIT_LIFETIME, "3600", NULL), AK_OK);
	CHECK_EQ(ak_store_serialize(s, &doc, &len), AK_OK);
	CHECK(strstr(doc, "\"confirm\":true") != NULL && strstr(doc, "\"lifetime\":3600") != NULL);
	CHECK_EQ(ak_store_parse(doc, len, &back), AK_OK);
	p = back != NULL ? ak_store_find(back, "prod") : NULL;
	CHECK(p != NULL);
	if (p != NULL) {
		CHECK_STR(p->rot.prev, "key-one");
		CHECK_STR(p->vars[0].rot.prev, "pw-one");
		CHECK_EQ(p->rotate_every, 7776000);
		CHECK_EQ(p->confirm, 1);
		CHECK_EQ(p->lifetime, 3600);
	}
	ak_store_free(back);
	ak_smem_free(doc);
	/* Rollback swaps; finish wipes; expiry wipes what is due and nothing else. */
	CHECK_EQ(edit1(s, AK_EDIT_ROLLBACK, "", NULL), AK_OK);
	p = ak_store_find(s, "prod");
	CHECK_STR(p->secret, "key-one");
	CHECK_STR(p->rot.prev, "key-two");
	CHECK_EQ(ak_store_expire(s, now + 5), 0);
	CHECK_EQ(ak_store_expire(s, now + 11), 1);
	p = ak_store_find(s, "prod");
	CHECK(p->vars[0].rot.prev == NULL);
	CHECK(p->rot.prev != NULL);
	CHECK_EQ(edit1(s, AK_EDIT_FINISH, "ANTHROPIC_API_KEY", NULL), AK_OK);
	CHECK(ak_store_find(s, "prod")->rot.prev == NULL);
	CHECK_EQ(ak_store_next_expiry(s), 0);
	/* A policy of 0 clears it (an edit says exactly what the policy is). */
	CHECK_EQ(edit1(s, AK_EDIT_ROTATE_EVERY, "0", NULL), AK_OK);
	CHECK_EQ(ak_store_find(s, "prod")->rotate_every, 0);
	/* The use policies are cleared by an edit saying so, and only then. */
	CHECK_EQ(ak_store_find(s, "prod")->confirm, 1);
	CHECK_EQ(edit1(s, AK_EDIT_CONFIRM, "0", NULL), AK_OK);
	CHECK_EQ(edit1(s, AK_EDIT_LIFETIME, "0", NULL), AK_OK);
	CHECK(ak_store_find(s, "prod")->confirm == 0 && ak_store_find(s, "prod")->lifetime == 0);
	CHECK_EQ(edit1(s, AK_EDIT_CONFIRM, "yes", NULL), AK_ERR_INVALID);
	CHECK_EQ(edit1(s, AK_EDIT_LIFETIME, "1h", NULL), AK_ERR_INVALID);
	ak_store_free(s);
}

static void
test_document(void)
{
	static const char *bad[] = {
		/* previous with a missing, unknown or mistyped field, or on a plain variable */
		"{\"version\":3,\"profiles\":[{\"name\":\"p\",\"provider\":\"a\",\"secret_var\":\"K\",\"secret\":\"s\","
		"\"description\":\"\",\"source\":\"\",\"created\":1,\"rotated\":1,\"vars\":[],"
		"\"previous\":{\"value\":\"o\",\"rotated\":1}}]}",
		"{\"version\":3,\"profiles\":[{\"name\":\"p\",\"provider\":\"a\",\"secret_var\":\"K\",\"secret\":\"s\","
		"\"description\":\"\",\"source\":\"\",\"created\":1,\"rotated\":1,\"vars\":[],"
		"\"previous\":{\"value\":\"o\",\"rotated\":1,\"until\":2,\"x\":1}}]}",
		"{\"version\":3,\"profiles\":[{\"name\":\"p\",\"provider\":\"a\",\"secret_var\":\"K\",\"secret\":\"s\","
		"\"description\":\"\",\"source\":\"\",\"created\":1,\"rotated\":1,\"vars\":[],"
		"\"previous\":{\"value\":\"\",\"rotated\":1,\"until\":2}}]}",
		"{\"version\":3,\"profiles\":[{\"name\":\"p\",\"provider\":\"a\",\"secret_var\":\"K\",\"secret\":\"s\","
		"\"description\":\"\",\"source\":\"\",\"created\":1,\"rotated\":1,\"vars\":[{\"name\":\"M\",\"value\":\"v\","
		"\"previous\":{\"value\":\"o\",\"rotated\":1,\"until\":2}}]}]}",
		"{\"version\":3,\"profiles\":[{\"name\":\"p\",\"provider\":\"a\",\"secret_var\":\"K\",\"secret\":\"s\","
		"\"description\":\"\",\"source\":\"\",\"created\":1,\"rotated\":1,\"vars\":[],\"rotate_every\":-5}]}",
		"{\"version\":3,\"profiles\":[{\"name\":\"p\",\"provider\":\"a\",\"secret_var\":\"K\",\"secret\":\"s\","
		"\"description\":\"\",\"source\":\"\",\"created\":1,\"rotated\":1,\"vars\":[],\"rotate_every\":1,"
		"\"rotate_every\":2}]}",
	};
	static const char *good =
		"{\"version\":3,\"profiles\":[{\"name\":\"p\",\"provider\":\"a\",\"secret_var\":\"K\",\"secret\":\"s\","
		"\"description\":\"\",\"source\":\"\",\"created\":1,\"rotated\":1,\"vars\":[{\"name\":\"M\",\"value\":\"v\","
		"\"secret\":true,\"previous\":{\"value\":\"o\",\"rotated\":1,\"until\":2}}],\"rotate_every\":60}]}";
	struct ak_store *s = NULL;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(ak_store_parse(bad[i], strlen(bad[i]), &s), AK_ERR_BAD_FORMAT);
		CHECK(s == NULL);
	}
	CHECK_EQ(ak_store_parse(good, strlen(good), &s), AK_OK);
	CHECK(s != NULL && s->p[0]->rotate_every == 60 && s->p[0]->vars[0].rot.until == 2);
	ak_store_free(s);
}

static void
test_due(void)
{
	CHECK_EQ(ak_rot_due(1000, 0, 999999), 0);
	CHECK_EQ(ak_rot_due(1000, 100, 1089), 0);
	CHECK_EQ(ak_rot_due(1000, 100, 1090), 1);
	CHECK_EQ(ak_rot_due(1000, 100, 1100), 2);
	/* The warning is at most a week before the end. */
	CHECK_EQ(ak_rot_due(0, 365 * 86400, 365 * 86400 - 8 * 86400), 0);
	CHECK_EQ(ak_rot_due(0, 365 * 86400, 365 * 86400 - 6 * 86400), 1);
}

/* rotate --deactivate: the hint is kept past the grace (the key wiped), survives the document, and
 * a finish ends it; a rollback or a new rotation drops it. */
static void
test_deactivate(void)
{
	static const char key[] = "sk-ant-api03-R2DxxxxxxxxxxxxxxxxxxxxxigAA";
	struct ak_store *s = sample_store(), *back = NULL;
	char hint[AK_ROT_HINT_MAX], *doc = NULL;
	size_t len;

	CHECK_EQ(ak_rot_hint(key, hint, sizeof(hint)), AK_OK);
	CHECK_STR(hint, "sk-ant-api03-R2D...igAA");
	CHECK(ak_rot_hint_match(hint, key));
	CHECK(!ak_rot_hint_match("sk-ant-api03-R2E...igAA", key));
	CHECK(!ak_rot_hint_match("sk-ant-api03-R2D...igAB", key));
	CHECK_EQ(ak_rot_hint("sk-ant-api03-short", hint, sizeof(hint)), AK_ERR_INVALID);
	CHECK_EQ(ak_rot_hint_check("no-dots"), AK_ERR_INVALID);
	CHECK_EQ(ak_rot_hint_check("...tail"), AK_ERR_INVALID);
	CHECK_EQ(ak_rot_hint_check("a...b...c"), AK_ERR_INVALID);
	CHECK_EQ(ak_rot_hint("sk-proj-ab-cdefghijklmnopqrstuvwxyz", hint, sizeof(hint)), AK_OK);
	CHECK_STR(hint, "sk-proj-ab-...wxyz");

	/* Nothing kept: nothing to deactivate. A secret variable has no provider key id. */
	CHECK_EQ(edit1(s, AK_EDIT_DEACTIVATE, "", NULL), AK_ERR_NO_PREVIOUS);
	CHECK_EQ(edit1(s, AK_EDIT_ROTATE, "", key), AK_OK);
	CHECK_EQ(edit1(s, AK_EDIT_ROTATE, "", "sk-ant-api03-NEWxxxxxxxxxxxxxxxxxxxxxxxAA"), AK_OK);
	CHECK_EQ(edit1(s, AK_EDIT_DEACTIVATE, "", NULL), AK_OK);
	CHECK_STR(s->p[0]->rot.hint, "sk-ant-api03-R2D...igAA");
	/* The grace ends: the key goes, the hint stays (pending), and the document keeps it. */
	CHECK_EQ(ak_store_expire(s, s->p[0]->rot.until), 1);
	CHECK(s->p[0]->rot.prev == NULL && s->p[0]->rot.hint != NULL);
	CHECK_EQ(ak_store_expire(s, s->p[0]->rot.until + 100), 0);
	CHECK_EQ(ak_store_serialize(s, &doc, &len), AK_OK);
	CHECK(doc != NULL && strstr(doc, "\"deactivate\":\"sk-ant-api03-R2D...igAA\"") != NULL &&
	    strstr(doc, "R2Dxxxx") == NULL);
	CHECK_EQ(ak_store_parse(doc, len, &back), AK_OK);
	CHECK(back != NULL && back->p[0]->rot.prev == NULL && back->p[0]->rot.hint != NULL &&
	    strcmp(back->p[0]->rot.hint, "sk-ant-api03-R2D...igAA") == 0);
	ak_store_free(back);
	ak_smem_free(doc);
	/* A plain finish (one that could not reach the provider) leaves it pending; one that reports the
	 * deactivation ends it; then there is nothing left to finish. */
	CHECK_EQ(edit1(s, AK_EDIT_FINISH, "", NULL), AK_ERR_DEACT_PENDING);
	CHECK(s->p[0]->rot.hint != NULL);
	CHECK_EQ(edit1(s, AK_EDIT_FINISH, "", "nope"), AK_ERR_INVALID);
	CHECK_EQ(edit1(s, AK_EDIT_FINISH, "", AK_FINISH_DEACTIVATED), AK_OK);
	CHECK(s->p[0]->rot.hint == NULL);
	CHECK_EQ(edit1(s, AK_EDIT_FINISH, "", NULL), AK_ERR_NO_PREVIOUS);
	/* A plain finish while the old key is kept wipes it and makes the deactivation pending. */
	CHECK_EQ(edit1(s, AK_EDIT_ROTATE, "", key), AK_OK);
	CHECK_EQ(edit1(s, AK_EDIT_DEACTIVATE, "", NULL), AK_OK);
	CHECK_EQ(edit1(s, AK_EDIT_FINISH, "", NULL), AK_OK);
	CHECK(s->p[0]->rot.prev == NULL && s->p[0]->rot.hint != NULL);
	CHECK_EQ(edit1(s, AK_EDIT_FINISH, "", AK_FINISH_DEACTIVATED), AK_OK);
	/* A rollback drops the mark: the key kept is then the new one. */
	CHECK_EQ(edit1(s, AK_EDIT_ROTATE, "", "sk-ant-api03-THIRDxxxxxxxxxxxxxxxxxxxxAA"), AK_OK);
	CHECK_EQ(edit1(s, AK_EDIT_DEACTIVATE, "", NULL), AK_OK);
	CHECK_EQ(edit1(s, AK_EDIT_ROLLBACK, "", NULL), AK_OK);
	CHECK(s->p[0]->rot.hint == NULL);
	ak_store_free(s);
}

int
main(void)
{
	if (ak_smem_init() != 0) {
		fprintf(stderr, "ak_smem_init failed\n");
		return 1;
	}
	ak_smem_hook_cjson();
	test_cycle();
	test_document();
	test_due();
	test_deactivate();
	T_DONE();
}
