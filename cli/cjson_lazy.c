/* cjson_lazy.c - akctl's cJSON, opened with dlopen() the first time a command needs it.
 *
 * get/env/use/exec never touch JSON (the agent's replies are binary), yet a linked libcjson is mapped,
 * relocated and bound at every start. So akctl links none: these functions, one per cJSON function the
 * program uses, load libcjson.so.1 on the first call that needs it and forward to it. A cJSON function
 * akctl starts to use without a line here is an undefined reference at link time, not a surprise at run
 * time.
 *
 * The hooks given to cJSON_InitHooks (the secure arena, at start-up) are kept until the library is
 * loaded and installed in it before any other call, so every cJSON allocation still lands in the arena.
 * If the library cannot be loaded, akctl says so once and each function fails the way cJSON reports
 * running out of memory (NULL, false, 0).
 */
#include <dlfcn.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#define CJSON_SONAME "libcjson.so.1"

#define CJ_FUNCS(X) \
	X(AddArrayToObject) X(AddBoolToObject) X(AddItemToArray) X(AddNullToObject) X(AddNumberToObject) \
	X(AddObjectToObject) X(AddStringToObject) X(AddTrueToObject) X(CreateArray) X(CreateObject) \
	X(CreateString) X(Delete) X(GetArraySize) X(GetObjectItemCaseSensitive) X(InitHooks) X(IsArray) X(IsBool) X(IsNumber) \
	X(IsObject) X(IsString) X(IsTrue) X(Parse) X(ParseWithLengthOpts) X(ParseWithOpts) \
	X(PrintUnformatted) X(free)

static struct {
#define CJ_PTR(f) __typeof__(&cJSON_##f) f;
	CJ_FUNCS(CJ_PTR)
#undef CJ_PTR
} cj;

static int state;               /* 0 not tried, 1 loaded, -1 failed */
static cJSON_Hooks hooks;       /* what cJSON_InitHooks was given before the library was loaded */
static int have_hooks;

static int
load(void)
{
	void *lib;

	if (state != 0)
		return state > 0;
	state = -1;
	if ((lib = dlopen(CJSON_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "akctl: %s cannot be loaded: %s\n", CJSON_SONAME, dlerror());
		return 0;
	}
	/* POSIX: a function pointer read through dlsym's void * (the cast is the documented idiom). */
#define CJ_SYM(f) \
	if ((*(void **)&cj.f = dlsym(lib, "cJSON_" #f)) == NULL) { \
		fprintf(stderr, "akctl: %s has no cJSON_%s\n", CJSON_SONAME, #f); \
		return 0; \
	}
	CJ_FUNCS(CJ_SYM)
#undef CJ_SYM
	if (have_hooks)
		cj.InitHooks(&hooks);
	state = 1;
	return 1;
}

void
cJSON_InitHooks(cJSON_Hooks *h)
{
	if (state > 0) {
		cj.InitHooks(h);
		return;
	}
	/* NULL means cJSON's defaults, which is also what a library loaded without hooks has. */
	have_hooks = h != NULL;
	if (h != NULL)
		hooks = *h;
}

/* Nothing to free without a library: every cJSON pointer came from it. */
void
cJSON_Delete(cJSON *item)
{
	if (item != NULL && load())
		cj.Delete(item);
}

void
cJSON_free(void *object)
{
	if (object != NULL && load())
		cj.free(object);
}

#define CJ_FWD(ret, f, fail, params, args) \
	ret cJSON_##f params \
	{ \
		return load() ? cj.f args : fail; \
	}

CJ_FWD(cJSON *, AddArrayToObject, NULL, (cJSON *const object, const char *const name), (object, name))
CJ_FWD(cJSON *, AddBoolToObject, NULL, (cJSON *const object, const char *const name, const cJSON_bool boolean),
    (object, name, boolean))
CJ_FWD(cJSON_bool, AddItemToArray, 0, (cJSON *array, cJSON *item), (array, item))
CJ_FWD(cJSON *, AddNullToObject, NULL, (cJSON *const object, const char *const name), (object, name))
CJ_FWD(cJSON *, AddNumberToObject, NULL, (cJSON *const object, const char *const name, const double number),
    (object, name, number))
CJ_FWD(cJSON *, AddObjectToObject, NULL, (cJSON *const object, const char *const name), (object, name))
CJ_FWD(cJSON *, AddStringToObject, NULL,
    (cJSON *const object, const char *const name, const char *const string), (object, name, string))
CJ_FWD(cJSON *, AddTrueToObject, NULL, (cJSON *const object, const char *const name), (object, name))
CJ_FWD(cJSON *, CreateArray, NULL, (void), ())
CJ_FWD(cJSON *, CreateObject, NULL, (void), ())
CJ_FWD(cJSON *, CreateString, NULL, (const char *string), (string))
CJ_FWD(int, GetArraySize, 0, (const cJSON *array), (array))
CJ_FWD(cJSON *, GetObjectItemCaseSensitive, NULL, (const cJSON *const object, const char *const string),
    (object, string))
CJ_FWD(cJSON_bool, IsArray, 0, (const cJSON *const item), (item))
CJ_FWD(cJSON_bool, IsBool, 0, (const cJSON *const item), (item))
CJ_FWD(cJSON_bool, IsNumber, 0, (const cJSON *const item), (item))
CJ_FWD(cJSON_bool, IsObject, 0, (const cJSON *const item), (item))
CJ_FWD(cJSON_bool, IsString, 0, (const cJSON *const item), (item))
CJ_FWD(cJSON_bool, IsTrue, 0, (const cJSON *const item), (item))
CJ_FWD(cJSON *, Parse, NULL, (const char *value), (value))
CJ_FWD(cJSON *, ParseWithLengthOpts, NULL,
    (const char *value, size_t buffer_length, const char **return_parse_end, cJSON_bool require_null_terminated),
    (value, buffer_length, return_parse_end, require_null_terminated))
CJ_FWD(cJSON *, ParseWithOpts, NULL,
    (const char *value, const char **return_parse_end, cJSON_bool require_null_terminated),
    (value, return_parse_end, require_null_terminated))
CJ_FWD(char *, PrintUnformatted, NULL, (const cJSON *item), (item))
