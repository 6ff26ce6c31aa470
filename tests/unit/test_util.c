#include "t.h"
int main(void) { T_DONE(); }
