#include "cruntime.h"
int berth_cruntime_version(void) { return 1; }
