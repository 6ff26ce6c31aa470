/* dotenv.c - stub until the import work lands. */
#include "ak_dotenv.h"
void ak_dotenv_free(struct ak_dotenv *d) { (void)d; }
