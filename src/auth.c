/* auth.c - users table and crypt(3) verification. Accepted hash methods: yescrypt ($y$, $gy$),
 * scrypt ($7$), SHA-512 crypt ($6$), bcrypt ($2b$/$2y$); plain text and MD5 ($1$) are refused
 * at load time, naming the table line. The failure table is used from the loop thread only. */
#include "auth.h"

#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"

static bool strong_hash(const char *h)
{
    static const char *const prefixes[] = {"$y$", "$gy$", "$7$", "$6$", "$2b$", "$2y$", NULL};
    for (int i = 0; prefixes[i]; i++)
        if (strncmp(h, prefixes[i], strlen(prefixes[i])) == 0)
            return strlen(h) > 20;
    return false;
}

/* Logins, aliases and senders are compared in address_canonical's form; text that is no address
 * with a domain (a login typed wrong, a bare "postmaster") is only lower-cased. */
static void canonical_address(const char *in, size_t n, char *out, size_t outsz)
{
    char raw[ADDR_PATH_MAX + 1];
    if (memchr(in, '@', n) && address_canonical(in, n, out, outsz))
        return;
    snprintf(raw, sizeof raw, "%.*s", (int)(n < ADDR_PATH_MAX ? n : ADDR_PATH_MAX), in);
    ascii_lower_copy(out, raw, outsz);
}

/* Parses one line "address:hash[:alias,alias]"; returns an error text or NULL. */
static const char *parse_user_line(struct auth_users *u, char *line)
{
    char *colon = strchr(line, ':');
    if (!colon)
        return "expected address:crypt-hash";
    *colon = '\0';
    char *hash = colon + 1, *aliases = strchr(hash, ':');
    if (aliases)
        *aliases++ = '\0';
    struct mailbox mb;
    if (address_parse_mailbox(line, strlen(line), &mb) != ADDR_OK)
        return "invalid address";
    if (!strong_hash(hash))
        return "not a yescrypt/scrypt/SHA-512/bcrypt crypt hash (make one with: postern passwd)";
    for (const char *a = aliases; a && *a;) { /* validate each comma-separated alias in place */
        size_t n = strcspn(a, ",");
        if (address_parse_mailbox(a, n, &mb) != ADDR_OK)
            return "invalid alias address";
        a += n + (a[n] == ',');
    }
    char key[ADDR_PATH_MAX + 1], value[4096], alias[ADDR_PATH_MAX + 1];
    canonical_address(line, strlen(line), key, sizeof key);
    size_t used = (size_t)snprintf(value, sizeof value, "%s", hash);
    for (const char *a = aliases; a && *a;) { /* hash:alias,alias in canonical form */
        size_t n = strcspn(a, ",");
        canonical_address(a, n, alias, sizeof alias);
        int w = snprintf(value + used, sizeof value - used, "%c%s", a == aliases ? ':' : ',', alias);
        if (w < 0 || (size_t)w >= sizeof value - used)
            return "too many aliases (at most 4,000 octets of them)";
        used += (size_t)w;
        a += n + (a[n] == ',');
    }
    return strmap_put(&u->users, key, value) ? NULL : "out of memory";
}

static char dummy_hash[256];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

/* A real hash of a random password, so a check for an unknown user costs a full crypt(3). */
static void make_dummy_hash(void)
{
    unsigned char rnd[16];
    char pw[33];
    RAND_bytes(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(pw + 2 * i, 3, "%02x", rnd[i]);
    char *h = auth_hash_password(pw);
    snprintf(dummy_hash, sizeof dummy_hash, "%s", h ? h : "$6$x$");
    free(h);
}

bool auth_users_load(struct auth_users *u, const struct config *cfg, struct config_errors *errs)
{
    size_t before = errs->count;
    strmap_init(&u->users);
    if (!*cfg->users)
        return true;
    FILE *f = fopen(cfg->users, "r");
    if (!f) {
        config_errors_add(errs, "%s:%d: users: cannot read table %s: %s", cfg->path, config_key_line(cfg, "users"),
                          cfg->users, strerror(errno));
        return false;
    }
    char line[4096];
    for (int lineno = 1; fgets(line, sizeof line, f); lineno++) {
        line[strcspn(line, "\r\n")] = '\0';
        char *s = line + strspn(line, " \t");
        if (!*s || *s == '#')
            continue;
        const char *err = parse_user_line(u, s);
        if (err)
            config_errors_add(errs, "%s:%d: users: %s", cfg->users, lineno, err); /* never echo the hash */
    }
    fclose(f);
    if (u->users.count)
        pthread_once(&dummy_once, make_dummy_hash); /* now, not in the event loop's first AUTH */
    return errs->count == before;
}

void auth_users_free(struct auth_users *u) { strmap_free(&u->users); }

bool auth_users_present(const struct auth_users *u) { return u->users.count > 0; }

bool auth_user_hash(const struct auth_users *u, const char *login, char *hash, size_t hashsz)
{
    char key[ADDR_PATH_MAX + 1];
    const char *value = NULL;
    pthread_once(&dummy_once, make_dummy_hash);
    canonical_address(login, strlen(login), key, sizeof key);
    bool known = strmap_get(&u->users, key, &value);
    snprintf(hash, hashsz, "%s", known ? value : dummy_hash);
    hash[strcspn(hash, ":")] = '\0';
    return known;
}

bool auth_verify_hash(const char *hash, const char *password)
{
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return false;
    const char *out = crypt_rn(password, hash, cd, (int)sizeof *cd);
    bool ok = out && strlen(out) == strlen(hash) && CRYPTO_memcmp(out, hash, strlen(hash)) == 0;
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return ok;
}

/* The login itself or one of its aliases is exactly s (all in canonical form). */
static bool owns_exactly(const struct auth_users *u, const char *l, const char *s)
{
    const char *value;
    if (strcmp(l, s) == 0)
        return true;
    if (!strmap_get(&u->users, l, &value) || !(value = strchr(value, ':')))
        return false;
    for (const char *a = value + 1; *a;) {
        size_t n = strcspn(a, ",");
        if (n == strlen(s) && strncmp(a, s, n) == 0)
            return true;
        a += n + (a[n] == ',');
    }
    return false;
}

bool auth_may_send_as(const struct auth_users *u, const char *login, const char *sender, const char *delimiter)
{
    char l[ADDR_PATH_MAX + 1], s[ADDR_PATH_MAX + 1], base[ADDR_PATH_MAX + 1];
    if (!*sender)
        return true; /* the null sender (bounces, receipts) */
    canonical_address(login, strlen(login), l, sizeof l);
    canonical_address(sender, strlen(sender), s, sizeof s);
    if (owns_exactly(u, l, s))
        return true;
    const char *at = strrchr(s, '@');
    size_t local_len = at ? (size_t)(at - s) : strlen(s);
    size_t cut = delimiter && *delimiter ? strcspn(s, delimiter) : local_len;
    if (cut == 0 || cut >= local_len)
        return false; /* no extension */
    snprintf(base, sizeof base, "%.*s%s", (int)cut, s, at ? at : "");
    return owns_exactly(u, l, base);
}

char *auth_hash_password(const char *password)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn(NULL, 0, NULL, 0, setting, sizeof setting))
        return NULL;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return NULL;
    const char *out = crypt_rn(password, setting, cd, (int)sizeof *cd);
    char *r = out && out[0] == '$' ? strdup(out) : NULL;
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return r;
}

/* ---- failure counter: a small table of recent offenders, oldest entry replaced when full ---- */

#define FAIL_SLOTS 1024
#define FAIL_FORGET 900.0 /* seconds */

static struct {
    char ip[48];
    unsigned count;
    double last;
} fails[FAIL_SLOTS];

/* The slot of ip: its own, else a free one, else the least recently used (when create). */
static int fail_slot(const char *ip, double now, bool create)
{
    int free_slot = -1, lru = 0;
    for (int i = 0; i < FAIL_SLOTS; i++) {
        if (fails[i].count && now - fails[i].last > FAIL_FORGET)
            fails[i].count = 0;
        if (fails[i].count && strcmp(fails[i].ip, ip) == 0)
            return i;
        if (!fails[i].count && free_slot < 0)
            free_slot = i;
        if (fails[i].last < fails[lru].last)
            lru = i;
    }
    if (!create)
        return -1;
    int i = free_slot >= 0 ? free_slot : lru;
    snprintf(fails[i].ip, sizeof fails[i].ip, "%s", ip);
    fails[i].count = 0;
    return i;
}

unsigned auth_failures(const char *ip, double now)
{
    int i = fail_slot(ip, now, false);
    return i < 0 ? 0 : fails[i].count;
}

unsigned auth_failure_add(const char *ip, double now)
{
    int i = fail_slot(ip, now, true);
    fails[i].last = now;
    return ++fails[i].count;
}
