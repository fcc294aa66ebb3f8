#include "ccurl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static void *library;
static char load_error[256];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static CURL *(*easy_init)(void);
static void (*easy_cleanup)(CURL *);
static void (*easy_reset)(CURL *);
static CURLcode (*easy_perform)(CURL *);
static const char *(*easy_strerror)(CURLcode);
static struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
static void (*slist_free_all)(struct curl_slist *);
static CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
static CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);

#define RESOLVE(var, name)                                                                          \
    if (!(*(void **)&var = dlsym(library, name))) {                                                  \
        snprintf(load_error, sizeof load_error, "libcurl.so.4 has no %s (install libcurl4)", name);  \
        library = NULL;                                                                             \
        return;                                                                                     \
    }

static void load(void) {
    library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(load_error, sizeof load_error, "cannot load libcurl (install libcurl4): %s", dlerror());
        return;
    }
    CURLcode (*global_init)(long);
    RESOLVE(global_init, "curl_global_init")
    RESOLVE(easy_init, "curl_easy_init")
    RESOLVE(easy_cleanup, "curl_easy_cleanup")
    RESOLVE(easy_reset, "curl_easy_reset")
    RESOLVE(easy_perform, "curl_easy_perform")
    RESOLVE(easy_strerror, "curl_easy_strerror")
    RESOLVE(slist_append, "curl_slist_append")
    RESOLVE(slist_free_all, "curl_slist_free_all")
    RESOLVE(easy_setopt, "curl_easy_setopt")
    RESOLVE(easy_getinfo, "curl_easy_getinfo")
    /* Once, before any thread makes a handle: curl_global_init is not thread-safe. */
    CURLcode code = global_init(CURL_GLOBAL_DEFAULT);
    if (code != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "cannot initialise libcurl: %s", easy_strerror(code));
        library = NULL;
    }
}

const char *ccurl_load_error(void) {
    pthread_once(&load_once, load);
    return library ? NULL : load_error;
}

/* Callers check ccurl_load_error() first; these never run with libcurl missing. */
CURL *ccurl_easy_init(void) { return easy_init(); }
void ccurl_easy_cleanup(CURL *handle) { easy_cleanup(handle); }
void ccurl_easy_reset(CURL *handle) { easy_reset(handle); }
CURLcode ccurl_easy_perform(CURL *handle) { return easy_perform(handle); }
const char *ccurl_easy_strerror(CURLcode code) { return easy_strerror(code); }
struct curl_slist *ccurl_slist_append(struct curl_slist *list, const char *string) {
    return slist_append(list, string);
}
void ccurl_slist_free_all(struct curl_slist *list) { slist_free_all(list); }

CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value) { return easy_setopt(handle, option, value); }
CURLcode ccurl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return easy_setopt(handle, option, value);
}
CURLcode ccurl_setopt_pointer(CURL *handle, CURLoption option, const void *value) {
    return easy_setopt(handle, option, value);
}

CURLcode ccurl_setopt_write(CURL *handle, ccurl_data_callback callback, void *context) {
    CURLcode code = easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
    return code != CURLE_OK ? code : easy_setopt(handle, CURLOPT_WRITEDATA, context);
}
CURLcode ccurl_setopt_header(CURL *handle, ccurl_data_callback callback, void *context) {
    CURLcode code = easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
    return code != CURLE_OK ? code : easy_setopt(handle, CURLOPT_HEADERDATA, context);
}
CURLcode ccurl_setopt_read(CURL *handle, ccurl_data_callback callback, void *context) {
    CURLcode code = easy_setopt(handle, CURLOPT_READFUNCTION, callback);
    return code != CURLE_OK ? code : easy_setopt(handle, CURLOPT_READDATA, context);
}

CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value) { return easy_getinfo(handle, info, value); }
