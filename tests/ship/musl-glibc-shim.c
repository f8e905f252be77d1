/*
 * Test support only: lets Debian's glibc-built libstdc++.so.6 and libgcc_s.so.1 load under musl's dynamic
 * loader, so onacc's musl release binary (whose Bun runtime needs libstdc++) can run on this Debian machine.
 * A musl host has its own musl-built libstdc++ (Alpine: apk add libstdc++ libgcc) and needs none of this.
 * Built as "ld-linux-x86-64.so.2" (the name those libraries ask for) with musl-gcc; it supplies the few
 * glibc-only symbols they import, the way Alpine's gcompat does. onacc itself never calls any of them.
 */
#include <locale.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

char __libc_single_threaded = 0;

uint32_t arc4random(void) {
  uint32_t v = 0;
  getrandom(&v, sizeof v, 0);
  return v;
}

size_t __strftime_l(char *s, size_t n, const char *f, const struct tm *tm, locale_t l) { return strftime_l(s, n, f, tm, l); }

/* thread_local destructors are not run at thread exit under this shim: acceptable for a test run. */
int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso) {
  (void)dtor;
  (void)obj;
  (void)dso;
  return 0;
}

/* -1: "not found", so libgcc's unwinder falls back to dl_iterate_phdr, which musl has. */
int _dl_find_object(void *pc, void *result) {
  (void)pc;
  (void)result;
  return -1;
}

/* libgcc_s exports these under a hidden symbol version that musl's loader does not bind to. */
struct { unsigned int vendor, type, subtype, features[1]; } __cpu_model;
int __cpu_indicator_init(void) { return 0; }
