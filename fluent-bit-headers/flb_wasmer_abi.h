/*
 * flb-wasmer: our own declarations of the slice of the Fluent Bit plugin ABI we use.
 *
 * Written by the flb-wasmer authors from measured layouts (docs/abi.md), not copied from
 * Fluent Bit. Only LP64 Linux (x86_64, aarch64) is covered. Everything we call on the host
 * is declared as a function-pointer type: the plugin resolves each symbol with
 * dlsym(RTLD_DEFAULT, ...) at load time, so the shared object has no undefined references
 * to the host and can refuse an unknown host cleanly instead of failing to load.
 *
 * Layout generations (first upstream tag of each):
 *   G1  v3.2.3 .. v5.0.2   input plugin 208 B, config map entry  96 B, 3-arg config_map_set
 *   G2  v5.0.3 .. v5.0.9   input plugin 208 B, config map entry 104 B
 *   G3  v5.1.0 ..          input plugin 232 B, config map entry 104 B
 * The filter plugin (88 B) is the same in all three.
 */
#ifndef FLB_WASMER_ABI_H
#define FLB_WASMER_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- basic host types ------------------------------------------------------------- */

/* Intrusive doubly linked list; `prev` comes first. */
struct mk_list {
    struct mk_list *prev;
    struct mk_list *next;
};

/* A host string: points at the bytes; a 16-byte header {u64 len; u64 alloc} precedes it. */
typedef char *flb_sds_t;

struct flb_time {
    struct timespec tm;
};

/* Opaque to us: we only hold pointers to these. */
struct flb_config;
struct flb_input_instance;
struct flb_filter_instance;
struct flb_parser;
struct flb_worker;
struct cfl_variant;

/* ---- config map ------------------------------------------------------------------- */

enum flb_config_map_type {
    FLB_CONFIG_MAP_STR = 0,
    FLB_CONFIG_MAP_STR_PREFIX = 1,
    FLB_CONFIG_MAP_INT = 2,
    FLB_CONFIG_MAP_BOOL = 3,
    FLB_CONFIG_MAP_DOUBLE = 4,
    FLB_CONFIG_MAP_SIZE = 5,
    FLB_CONFIG_MAP_TIME = 6,
    FLB_CONFIG_MAP_DEPRECATED = 7,
    FLB_CONFIG_MAP_CLIST = 30,
    FLB_CONFIG_MAP_SLIST = 40,
    FLB_CONFIG_MAP_VARIANT = 50
};

enum flb_config_map_flags {
    FLB_CONFIG_MAP_MULT = 1
};

union flb_config_map_value {
    int i_num;
    int boolean;
    double d_num;
    size_t s_num;
    flb_sds_t str;
    struct mk_list *list;
    struct cfl_variant *variant;
};

/* G2/G3 (v5.0.3+): the value gained `raw`. */
struct flb_config_map_val_g2 {
    union flb_config_map_value val;
    flb_sds_t raw;
    struct mk_list *mult;
    struct mk_list _head;
};

struct flb_config_map_val_g1 {
    union flb_config_map_value val;
    struct mk_list *mult;
    struct mk_list _head;
};

/* One entry of a plugin's static config map; the array ends with an entry whose name is NULL.
 * The host walks the array with its own sizeof, so the stride must match the host. */
struct flb_config_map_g2 {
    int type;
    flb_sds_t name;
    flb_sds_t def_value;
    int flags;
    int set_property; /* we always leave 0: values are read with *_get_property */
    uintptr_t offset;
    flb_sds_t desc;
    struct flb_config_map_val_g2 value;
    struct mk_list _head;
};

struct flb_config_map_g1 {
    int type;
    flb_sds_t name;
    flb_sds_t def_value;
    int flags;
    int set_property;
    uintptr_t offset;
    flb_sds_t desc;
    struct flb_config_map_val_g1 value;
    struct mk_list _head;
};

/* ---- callbacks ---------------------------------------------------------------------- */

typedef int (*flb_input_init_cb)(struct flb_input_instance *ins, struct flb_config *config,
                                 void *data);
typedef int (*flb_input_pre_run_cb)(struct flb_input_instance *ins, struct flb_config *config,
                                    void *context);
typedef int (*flb_input_collect_cb)(struct flb_input_instance *ins, struct flb_config *config,
                                    void *context);
typedef void (*flb_input_pause_cb)(void *context, struct flb_config *config);
typedef int (*flb_input_pause_checked_cb)(void *context, struct flb_config *config);
typedef void (*flb_input_pre_exit_cb)(void *context, struct flb_config *config);
typedef int (*flb_plugin_exit_cb)(void *context, struct flb_config *config);

typedef int (*flb_filter_init_cb)(struct flb_filter_instance *ins, struct flb_config *config,
                                  void *data);
typedef int (*flb_filter_cb)(const void *data, size_t bytes, const char *tag, int tag_len,
                             void **out_buf, size_t *out_bytes,
                             struct flb_filter_instance *f_ins,
                             struct flb_input_instance *i_ins, void *filter_context,
                             struct flb_config *config);

/* ---- registration objects ----------------------------------------------------------- */

enum flb_input_flags {
    FLB_INPUT_NET = 4,
    FLB_INPUT_CORO = 128,
    FLB_INPUT_PRIVATE = 256,
    FLB_INPUT_NOTAG = 512,
    FLB_INPUT_THREADED = 1024
};

enum flb_filter_event_type {
    FLB_FILTER_LOGS = 1
};

enum flb_filter_return {
    FLB_FILTER_MODIFIED = 1,
    FLB_FILTER_NOTOUCH = 2
};

/* The host's test-formatter block inside the input plugin (v3.2.3+); unused by us. */
struct flb_test_in_formatter {
    void *rt_ctx;
    int rt_ffd;
    void *format_ctx;
    void *rt_in_callback;
    void *rt_data;
    void *callback;
};

/* G3 (v5.1.0+): 232 bytes. */
struct flb_input_plugin_g3 {
    int type; /* 0 = core (C) plugin */
    void *proxy;
    int flags;
    char *name;
    char *description;
    void *config_map;
    flb_input_init_cb cb_init;
    flb_input_pre_run_cb cb_pre_run;
    flb_input_collect_cb cb_collect;
    void *cb_notification;
    void *cb_flush_buf;
    void *cb_flush_end;
    flb_input_pause_cb cb_pause;
    flb_input_pause_cb cb_resume;
    flb_input_pause_checked_cb cb_pause_checked;
    flb_input_pause_checked_cb cb_resume_checked;
    void *cb_ingest;
    flb_input_pre_exit_cb cb_pre_exit;
    flb_plugin_exit_cb cb_exit;
    void *cb_destroy; /* must stay NULL: the host calls it after dlclose */
    struct flb_test_in_formatter test_formatter;
    void *instance;
    struct mk_list _head;
};

/* G1/G2 (v3.2.3 .. v5.0.x): 208 bytes. */
struct flb_input_plugin_g1 {
    int type;
    void *proxy;
    int flags;
    char *name;
    char *description;
    void *config_map;
    flb_input_init_cb cb_init;
    flb_input_pre_run_cb cb_pre_run;
    flb_input_collect_cb cb_collect;
    void *cb_notification;
    void *cb_flush_buf;
    void *cb_flush_end;
    flb_input_pause_cb cb_pause;
    flb_input_pause_cb cb_resume;
    void *cb_ingest;
    flb_plugin_exit_cb cb_exit;
    void *cb_destroy;
    struct flb_test_in_formatter test_formatter;
    void *instance;
    struct mk_list _head;
};

/* All generations: 88 bytes. */
struct flb_filter_plugin {
    int event_type;
    int flags;
    char *name;
    char *description;
    void *config_map;
    flb_filter_init_cb cb_pre_run;
    flb_filter_init_cb cb_init;
    flb_filter_cb cb_filter;
    flb_plugin_exit_cb cb_exit;
    void *cb_notification;
    struct mk_list _head;
};

/* The exported registration symbol is a zero-padded block this large, so a host whose struct
 * is larger than the one we fill never reads past our object. */
#define FLB_WASMER_PLUGIN_SLOT_SIZE 512

/* ---- instance fields we read (byte offsets; instances are opaque) ------------------ */

/* Input instance: `log_level` and `p` (the host's copy of our registration object; its
 * `name` pointer equals ours, which is the self-check). Official builds have CHUNK_TRACE. */
enum flb_input_instance_offsets {
    FLB_IN_LOG_LEVEL_CHUNK_TRACE = 136,
    FLB_IN_P_CHUNK_TRACE = 224,
    FLB_IN_LOG_LEVEL_NO_CHUNK_TRACE = 88,
    FLB_IN_P_NO_CHUNK_TRACE = 176
};

/* Input instance `properties` (a struct mk_list of struct flb_kv): +8 from v5.1.0. */
enum flb_input_instance_properties_offsets {
    FLB_IN_PROPERTIES_G3_CHUNK_TRACE = 424,
    FLB_IN_PROPERTIES_G1_CHUNK_TRACE = 416,
    FLB_IN_PROPERTIES_G3_NO_CHUNK_TRACE = 376,
    FLB_IN_PROPERTIES_G1_NO_CHUNK_TRACE = 368
};

/* Filter instance: official builds have REGEX (match_regex precedes `p`). */
enum flb_filter_instance_offsets {
    FLB_FILTER_LOG_LEVEL = 8,
    FLB_FILTER_P_REGEX = 96,
    FLB_FILTER_P_NO_REGEX = 88,
    FLB_FILTER_PROPERTIES_REGEX = 104,
    FLB_FILTER_PROPERTIES_NO_REGEX = 96
};

/* A property as the host stores it in an instance's `properties` list. */
struct flb_kv {
    flb_sds_t key;
    flb_sds_t val;
    struct mk_list _head;
};

/* `struct flb_plugin.name` within the registration objects (self-check target). */
enum flb_plugin_name_offsets {
    FLB_INPUT_PLUGIN_NAME = 24,
    FLB_FILTER_PLUGIN_NAME = 8
};

enum flb_log_level {
    FLB_LOG_OFF = 0,
    FLB_LOG_ERROR = 1,
    FLB_LOG_WARN = 2,
    FLB_LOG_INFO = 3,
    FLB_LOG_DEBUG = 4,
    FLB_LOG_TRACE = 5
};

/* ---- host functions (resolved with dlsym) ------------------------------------------ */

typedef void (*flb_log_print_fn)(int type, const char *file, int line, const char *fmt, ...);
typedef struct flb_worker *(*flb_worker_get_fn)(void);

typedef void (*flb_input_set_context_fn)(struct flb_input_instance *ins, void *context);
typedef int (*flb_input_set_collector_time_fn)(struct flb_input_instance *ins,
                                               flb_input_collect_cb cb, time_t seconds,
                                               long nanoseconds, struct flb_config *config);
typedef int (*flb_input_set_collector_event_fn)(struct flb_input_instance *ins,
                                                flb_input_collect_cb cb, int fd,
                                                struct flb_config *config);
typedef int (*flb_input_collector_fn)(int coll_id, struct flb_input_instance *ins);
typedef int (*flb_input_log_append_fn)(struct flb_input_instance *ins, const char *tag,
                                       size_t tag_len, const void *buf, size_t buf_size);
typedef const char *(*flb_input_get_property_fn)(const char *key,
                                                 struct flb_input_instance *ins);
typedef const char *(*flb_input_name_fn)(struct flb_input_instance *ins);

typedef void (*flb_filter_set_context_fn)(struct flb_filter_instance *ins, void *context);
typedef const char *(*flb_filter_get_property_fn)(const char *key,
                                                  struct flb_filter_instance *ins);
typedef const char *(*flb_filter_name_fn)(struct flb_filter_instance *ins);

typedef struct flb_parser *(*flb_parser_get_fn)(const char *name, struct flb_config *config);
typedef int (*flb_parser_do_fn)(struct flb_parser *parser, const char *buf, size_t length,
                                void **out_buf, size_t *out_size, struct flb_time *out_time);

/* Symbols probed to identify the host generation and build options. */
#define FLB_PROBE_TEST_FORMATTER "flb_input_set_test"       /* >= v3.2.3 */
#define FLB_PROBE_CONFIG_MAP_RAW "flb_config_map_get_raw"   /* >= v5.0.3 */
#define FLB_PROBE_INPUT_PAUSE_CHECKED "flb_input_plugin_pause" /* >= v5.1.0 */
#define FLB_PROBE_CHUNK_TRACE "flb_chunk_trace_context_new"
#define FLB_PROBE_REGEX "flb_regex_create"

#endif
