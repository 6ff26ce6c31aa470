/* fuzz.h - shared by the fuzz targets, the replay driver and the corpus generator.
 *
 * Each fuzz_<x>.c defines LLVMFuzzerTestOneInput (and may define LLVMFuzzerInitialize). Built two ways:
 * with clang -fsanitize=fuzzer (libFuzzer's main, -Dfuzz=true) and, in every build, with driver.c,
 * a main() that replays a corpus plus deterministic mutations (suite 'fuzz-replay').
 *
 * A failed property calls FUZZ_CHECK's abort(): libFuzzer then saves the input as a crash.
 */
#ifndef AK_FUZZ_H
#define AK_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, what)                                                                  \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			fprintf(stderr, "fuzz: property failed at %s:%d: %s (%s)\n", __FILE__,    \
			    __LINE__, (what), #cond);                                           \
			abort();                                                                \
		}                                                                               \
	} while (0)

/* The keystore the dispatch target unlocks: its key is Argon2id (insecure-test preset: ops 1,
 * mem 8 KiB) of FUZZ_PASSPHRASE under FUZZ_SALT, so seeds can carry the right UNLOCK key. */
#define FUZZ_PASSPHRASE "fuzz-passphrase"
#define FUZZ_SALT "akagent-fuzz-sal" /* 16 bytes */

struct ak_kdf;
struct ak_store;
/* Fill kdf (insecure-test, fixed salt) and derive the key (32 bytes). 0 on success. */
int fuzz_fixed_key(struct ak_kdf *kdf, uint8_t *key);
/* A small store of three profiles (long, realistic secrets). NULL on failure. */
struct ak_store *fuzz_sample_store(void);

#endif
