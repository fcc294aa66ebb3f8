#include "carchive.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *library;
static char load_error[256];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void) {
    library = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(load_error, sizeof load_error, "cannot load libarchive (install libarchive13): %s", dlerror());
    }
}

const char *carchive_load_error(void) {
    pthread_once(&load_once, load);
    return library ? NULL : load_error;
}

/* Callers check carchive_load_error() first, so a missing symbol here is a broken install. */
static void *real(const char *name) {
    const char *error = carchive_load_error();
    void *symbol = error ? NULL : dlsym(library, name);
    if (!symbol) {
        fprintf(stderr, "berth: %s\n", error ? error : dlerror());
        abort();
    }
    return symbol;
}

/* Defines `name` with libarchive's own prototype (checked against archive.h) and forwards. */
#define FORWARD(ret, name, params, args)                         \
    ret name params {                                            \
        static ret(*fn) params;                                  \
        if (!fn) fn = (ret(*) params)real(#name);                \
        return fn args;                                          \
    }

FORWARD(struct archive *, archive_read_new, (void), ())
FORWARD(int, archive_read_free, (struct archive *a), (a))
/* The decompressors Docker reads layers and archives with, all built into libarchive: never
 * filter_all, which may run external programs (lrzip, lzop, grzip) on hostile input. */
FORWARD(int, archive_read_support_filter_gzip, (struct archive *a), (a))
FORWARD(int, archive_read_support_filter_bzip2, (struct archive *a), (a))
FORWARD(int, archive_read_support_filter_xz, (struct archive *a), (a))
FORWARD(int, archive_read_support_filter_zstd, (struct archive *a), (a))
FORWARD(int, archive_read_support_format_tar, (struct archive *a), (a))
FORWARD(int, archive_read_support_format_raw, (struct archive *a), (a))
FORWARD(int, archive_read_open_filename, (struct archive *a, const char *f, size_t b), (a, f, b))
FORWARD(int, archive_read_open,
        (struct archive *a, void *c, archive_open_callback *o, archive_read_callback *r, archive_close_callback *cl),
        (a, c, o, r, cl))
FORWARD(int, archive_read_next_header, (struct archive *a, struct archive_entry **e), (a, e))
FORWARD(la_ssize_t, archive_read_data, (struct archive *a, void *b, size_t s), (a, b, s))
FORWARD(int, archive_read_data_block, (struct archive *a, const void **b, size_t *s, la_int64_t *o), (a, b, s, o))
FORWARD(int, archive_filter_code, (struct archive *a, int n), (a, n))
FORWARD(const char *, archive_filter_name, (struct archive *a, int n), (a, n))
FORWARD(int, archive_errno, (struct archive *a), (a))
FORWARD(const char *, archive_error_string, (struct archive *a), (a))
/* An entry's fields. berth writes entries to disk itself (Sources/Images/LayerEntryWriter.swift),
 * relative to directory descriptors: archive_write_disk hands whole paths to the kernel, which
 * refuses those longer than PATH_MAX. */
FORWARD(la_int64_t, archive_entry_size, (struct archive_entry *e), (e))
FORWARD(const char *, archive_entry_pathname, (struct archive_entry *e), (e))
FORWARD(const char *, archive_entry_hardlink, (struct archive_entry *e), (e))
FORWARD(__LA_MODE_T, archive_entry_filetype, (struct archive_entry *e), (e))
FORWARD(__LA_MODE_T, archive_entry_perm, (struct archive_entry *e), (e))
FORWARD(la_int64_t, archive_entry_uid, (struct archive_entry *e), (e))
FORWARD(la_int64_t, archive_entry_gid, (struct archive_entry *e), (e))
FORWARD(dev_t, archive_entry_rdev, (struct archive_entry *e), (e))
FORWARD(const char *, archive_entry_symlink, (struct archive_entry *e), (e))
FORWARD(time_t, archive_entry_mtime, (struct archive_entry *e), (e))
FORWARD(long, archive_entry_mtime_nsec, (struct archive_entry *e), (e))
FORWARD(int, archive_entry_mtime_is_set, (struct archive_entry *e), (e))
FORWARD(time_t, archive_entry_atime, (struct archive_entry *e), (e))
FORWARD(long, archive_entry_atime_nsec, (struct archive_entry *e), (e))
FORWARD(int, archive_entry_atime_is_set, (struct archive_entry *e), (e))
FORWARD(int, archive_entry_size_is_set, (struct archive_entry *e), (e))
FORWARD(int, archive_entry_xattr_reset, (struct archive_entry *e), (e))
FORWARD(int, archive_entry_xattr_next,
        (struct archive_entry *e, const char **n, const void **v, size_t *s), (e, n, v, s))
FORWARD(int, archive_entry_acl_reset, (struct archive_entry *e, int t), (e, t))
FORWARD(int, archive_entry_acl_next,
        (struct archive_entry *e, int w, int *t, int *p, int *tag, int *q, const char **n), (e, w, t, p, tag, q, n))
/* FORWARD for functions that return nothing (C forbids returning a void expression). */
#define FORWARD_VOID(name, params, args)                          \
    void name params {                                            \
        static void(*fn) params;                                  \
        if (!fn) fn = (void(*) params)real(#name);                \
        fn args;                                                  \
    }

/* Image archives (`image load` reads the outer tar from a descriptor; `image save` writes one). */
FORWARD(int, archive_read_open_fd, (struct archive *a, int fd, size_t b), (a, fd, b))
FORWARD(__LA_MODE_T, archive_entry_mode, (struct archive_entry *e), (e))
FORWARD(struct archive *, archive_write_new, (void), ())
FORWARD(int, archive_write_free, (struct archive *a), (a))
FORWARD(int, archive_write_set_format_pax_restricted, (struct archive *a), (a))
FORWARD(int, archive_write_set_bytes_in_last_block, (struct archive *a, int n), (a, n))
FORWARD(int, archive_write_open_fd, (struct archive *a, int fd), (a, fd))
FORWARD(int, archive_write_header, (struct archive *a, struct archive_entry *e), (a, e))
FORWARD(la_ssize_t, archive_write_data, (struct archive *a, const void *b, size_t s), (a, b, s))
FORWARD(int, archive_write_finish_entry, (struct archive *a), (a))
FORWARD(int, archive_write_close, (struct archive *a), (a))
FORWARD(struct archive_entry *, archive_entry_new, (void), ())
FORWARD_VOID(archive_entry_free, (struct archive_entry *e), (e))
FORWARD_VOID(archive_entry_set_pathname, (struct archive_entry *e, const char *p), (e, p))
FORWARD_VOID(archive_entry_set_size, (struct archive_entry *e, la_int64_t s), (e, s))
FORWARD_VOID(archive_entry_set_filetype, (struct archive_entry *e, unsigned int t), (e, t))
FORWARD_VOID(archive_entry_set_perm, (struct archive_entry *e, __LA_MODE_T p), (e, p))
FORWARD_VOID(archive_entry_set_mtime, (struct archive_entry *e, time_t t, long n), (e, t, n))

/* Layers a build captures (Sources/Images/LayerCapture.swift): a tar written through a callback
 * that hashes it, entries made from the file system by berth itself. */
FORWARD(int, archive_write_open,
        (struct archive *a, void *c, archive_open_callback *o, archive_write_callback *w, archive_close_callback *cl),
        (a, c, o, w, cl))
FORWARD(int, archive_write_set_format_option, (struct archive *a, const char *m, const char *o, const char *v),
        (a, m, o, v))
FORWARD_VOID(archive_entry_set_uid, (struct archive_entry *e, la_int64_t u), (e, u))
FORWARD_VOID(archive_entry_set_gid, (struct archive_entry *e, la_int64_t g), (e, g))
FORWARD_VOID(archive_entry_set_rdev, (struct archive_entry *e, dev_t d), (e, d))
FORWARD_VOID(archive_entry_set_symlink, (struct archive_entry *e, const char *s), (e, s))
FORWARD_VOID(archive_entry_set_hardlink, (struct archive_entry *e, const char *h), (e, h))
FORWARD_VOID(archive_entry_xattr_add_entry, (struct archive_entry *e, const char *n, const void *v, size_t s),
             (e, n, v, s))
