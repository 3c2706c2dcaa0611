/* config_priv.h - the typed key table shared by config.c (the reader) and config_keys.c (the
 * table itself). Not for other modules: they use config.h. */
#ifndef POSTERN_CONFIG_PRIV_H
#define POSTERN_CONFIG_PRIV_H

#include <stddef.h>

#include "config.h"

enum key_type { T_STRING, T_PATH, T_OPTPATH, T_BOOL, T_UINT, T_SIZE, T_DURATION, T_LOGLEVEL,
                T_HOSTNAME, T_LISTEN_LIST, T_OPT_LISTEN_LIST, T_DOMAIN_LIST, T_SUFFIX_LIST, T_CIDR_LIST, T_TLS_VERSION,
                T_RESOLVER_LIST, T_DURATION_LIST, T_POLICY, T_MILTER_LIST };

struct key_def {
    const char *name;
    enum key_type type;
    size_t offset;
    const char *def;
    unsigned long long min, max;
    const char *meaning;
};

extern const struct key_def config_keys[]; /* every key, in the order the reference prints them */
extern const size_t config_nkeys;

#endif
