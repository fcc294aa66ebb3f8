#ifndef BERTH_CRUNTIME_H
#define BERTH_CRUNTIME_H
/* Placeholder; the runtime issue fills this in. */
int berth_cruntime_version(void);
#endif
