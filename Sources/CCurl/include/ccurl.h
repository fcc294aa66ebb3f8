#ifndef BERTH_CCURL_H
#define BERTH_CCURL_H
/* libcurl, loaded on first use.
 *
 * Only the registry commands (pull, push, login, search) speak HTTP, so berth does not link
 * libcurl and its TLS stack: every other command (container run above all) would map them at
 * start-up. lazy.c dlopen()s libcurl.so.4 the first time one of these functions is called.
 *
 * curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: the typed
 * ccurl_* wrappers below stand in for them. */
#include <curl/curl.h>

/* NULL when libcurl can be loaded (and curl_global_init ran), else why not. Call it first. */
const char *ccurl_load_error(void);

CURL *ccurl_easy_init(void);
void ccurl_easy_cleanup(CURL *handle);
void ccurl_easy_reset(CURL *handle);
CURLcode ccurl_easy_perform(CURL *handle);
const char *ccurl_easy_strerror(CURLcode code);
struct curl_slist *ccurl_slist_append(struct curl_slist *list, const char *string);
void ccurl_slist_free_all(struct curl_slist *list);

CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ccurl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value);
CURLcode ccurl_setopt_pointer(CURL *handle, CURLoption option, const void *value);

/* The callbacks berth installs: each gets the Swift side's context pointer as `context`. */
typedef size_t (*ccurl_data_callback)(char *data, size_t size, size_t count, void *context);
CURLcode ccurl_setopt_write(CURL *handle, ccurl_data_callback callback, void *context);
CURLcode ccurl_setopt_header(CURL *handle, ccurl_data_callback callback, void *context);
CURLcode ccurl_setopt_read(CURL *handle, ccurl_data_callback callback, void *context);

CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value);

#endif
