#ifndef BERTH_CARCHIVE_H
#define BERTH_CARCHIVE_H
/* libarchive, loaded on first use.
 *
 * Only image import and unpack read archives, yet linking libarchive makes every berth call map it
 * and its ten dependencies (libxml2, ICU, nettle, ...) at start-up: about 1.7 ms of each command's
 * ~7 ms. So berth does not link it: lazy.c defines the libarchive functions berth calls, each
 * forwarding to the real one in libarchive.so.13, which it dlopen()s the first time. */
#include <archive.h>
#include <archive_entry.h>

/* NULL when libarchive can be loaded, else why not (call before any archive_* function). */
const char *carchive_load_error(void);

#endif
