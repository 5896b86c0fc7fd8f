/* A stand-in "host" for refusal tests: dlopens a plugin like Fluent Bit does, then calls its
 * init callback with a fake instance. Built with or without -DLOOKS_LIKE_FLUENT_BIT: with it,
 * the executable exports the symbols our generation probes look for (so the plugin fills a
 * real registration object and must refuse at the per-instance self-check); without it,
 * nothing matches and the plugin must register an inert object.
 * Usage: fake_host <plugin.so> <symbol> <name-offset> <init-offset>
 * Exit codes: 0 = init returned -1 without crashing, 1 = usage/load errors, 2 = init succeeded. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LOOKS_LIKE_FLUENT_BIT
#define STUB(name) void name(void) { fprintf(stderr, "fake host: %s called\n", #name); abort(); }
STUB(flb_input_set_test)
STUB(flb_config_map_get_raw)
STUB(flb_input_plugin_pause)
STUB(flb_chunk_trace_context_new)
STUB(flb_regex_create)
STUB(flb_input_set_context)
STUB(flb_input_set_collector_time)
STUB(flb_input_set_collector_event)
STUB(flb_input_collector_pause)
STUB(flb_input_collector_resume)
STUB(flb_input_log_append)
STUB(flb_input_get_property)
STUB(flb_input_name)
STUB(flb_filter_set_context)
STUB(flb_filter_get_property)
STUB(flb_filter_name)
STUB(flb_parser_get)
STUB(flb_parser_do)
void *flb_worker_get(void) { return (void *) 1; }
void flb_log_print(int type, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    (void) file; (void) line;
    fprintf(stderr, "[level %d] ", type);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
#endif

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s plugin.so symbol name_offset init_offset\n", argv[0]);
        return 1;
    }
    void *h = dlopen(argv[1], RTLD_LAZY);
    if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    unsigned char *obj = dlsym(h, argv[2]);
    if (!obj) { fprintf(stderr, "dlsym: %s\n", dlerror()); return 1; }
    const char *name = *(const char **) (obj + atoi(argv[3]));
    int (*init)(void *, void *, void *) = *(int (**)(void *, void *, void *)) (obj + atoi(argv[4]));
    if (!name || !init) { fprintf(stderr, "registration object has no name or no init\n"); return 1; }
    printf("registered name: %s\n", name);
    /* A fake instance: zeroed, so its `p` field can never point at the plugin's object. */
    static unsigned char instance[4096];
    int rc = init(instance, NULL, NULL);
    printf("init returned %d\n", rc);
    return rc == -1 ? 0 : 2;
}
