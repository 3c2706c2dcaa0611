/* privs.c - permanent privilege drop (setgroups, setgid, setuid; verified by trying setuid(0)).
 * Never runs a session as root: a failure here stops the start-up. */
#include "privs.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spool_lock.h"

/* chowns path and, depth levels down, the directories below it (files are left alone: the user
 * only ever creates new files, and walking every stored message would make start-up slow). */
static void chown_dirs(const char *path, uid_t uid, gid_t gid, int depth)
{
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return;
    if ((st.st_uid != uid || st.st_gid != gid) && chown(path, uid, gid) < 0)
        log_warn("event=chown_failed path=%s error=\"%s\"", path, strerror(errno));
    if (depth == 0)
        return;
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        chown_dirs(sub, uid, gid, depth - 1);
    }
    if (d)
        closedir(d);
}

/* The account cfg->user names, or NULL with why filled: none of that name, or root itself. */
static struct passwd *server_user(const struct config *cfg, char *why, size_t whysz)
{
    struct passwd *pw = getpwnam(cfg->user);
    if (!pw)
        snprintf(why, whysz, "no such user '%s' (scripts/deps.sh creates it)", cfg->user);
    else if (pw->pw_uid == 0)
        snprintf(why, whysz, "'%s' is root (uid 0): refusing to run as root", cfg->user);
    return pw && pw->pw_uid != 0 ? pw : NULL;
}

bool privs_check(const struct config *cfg, struct config_errors *errs)
{
    char why[300];
    if (geteuid() != 0 || server_user(cfg, why, sizeof why))
        return true;
    config_errors_add(errs, "%s:%d: user: %s", cfg->path, config_key_line(cfg, "user"), why);
    return false;
}

bool privs_drop(const struct config *cfg)
{
    if (geteuid() != 0)
        return true;
    char why[300];
    struct passwd *pw = server_user(cfg, why, sizeof why);
    if (!pw) {
        log_error("event=startup_failed file=%s line=%d key=user error=\"%s\"", cfg->path, config_key_line(cfg, "user"),
                  why);
        return false;
    }
    chown_dirs(cfg->mail_dir, pw->pw_uid, pw->pw_gid, 3); /* <domain>/<mailbox>/{tmp,new,cur} */
    chown_dirs(cfg->spool_dir, pw->pw_uid, pw->pw_gid, 1);
    char pid_file[PATH_MAX]; /* made by root just before (spool_lock.c): a start as the user must open it too */
    spool_lock_path(cfg->spool_dir, pid_file, sizeof pid_file);
    if (chown(pid_file, pw->pw_uid, pw->pw_gid) < 0 && errno != ENOENT)
        log_warn("event=chown_failed path=%s error=\"%s\"", pid_file, strerror(errno));
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        log_error("event=startup_failed key=user error=\"cannot become %s: %s\"", cfg->user, strerror(errno));
        return false;
    }
    if (setuid(0) == 0 || geteuid() == 0) {
        log_error("event=startup_failed key=user error=\"root could be regained; refusing to run\"");
        return false;
    }
#if defined(__SANITIZE_ADDRESS__)
    prctl(PR_SET_DUMPABLE, 1); /* LeakSanitizer needs to inspect the process at exit */
#endif
    log_info("event=privileges_dropped user=%s uid=%ld", cfg->user, (long)pw->pw_uid);
    return true;
}
