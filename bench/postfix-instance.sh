#!/usr/bin/env bash
# A throw-away Postfix instance for the benchmark: its own config, queue and Maildir under DIR,
# listening on 127.0.0.1:PORT, delivering every recipient at example.test to DIR/mail/<local>/
# (Maildir, via the virtual agent). Never touches /etc/postfix's configuration.
#   postfix-instance.sh start DIR PORT     prints the master PID
#   postfix-instance.sh stop DIR           stops it by PID
set -eu
cmd=$1 dir=$2
case "$cmd" in
start)
    port=$3
    rm -rf "$dir"
    mkdir -p "$dir/conf" "$dir/queue" "$dir/data" "$dir/mail"
    owner=postern # the unprivileged account scripts/deps.sh creates; the virtual agent delivers as it
    chown "$owner:" "$dir/mail"
    chown postfix: "$dir/data"
    uid=$(id -u "$owner") gid=$(id -g "$owner")
    cat >"$dir/conf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localhost
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = example.test
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = texthash:$dir/conf/vmailbox
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
virtual_minimum_uid = 100
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
biff = no
alias_maps =
alias_database =
local_recipient_maps =
smtpd_banner = \$myhostname ESMTP
CONF
    # smtp-source -r N prepends a number to the recipient: alice, 0alice ... 9alice
    for n in "" 0 1 2 3 4 5 6 7 8 9; do echo "${n}alice@example.test ${n}alice/"; done >"$dir/conf/vmailbox"
    # the packaged master.cf, with smtpd on our port and nothing chrooted
    sed -e "s/^smtp \( *inet\)/127.0.0.1:$port\1/" /etc/postfix/master.cf |
        awk '$2 ~ /^(unix|inet|fifo|pass|unix-dgram)$/ && NF >= 8 { $5 = "n" } { print }' >"$dir/conf/master.cf"
    grep -q '^postlog' "$dir/conf/master.cf" ||
        echo 'postlog   unix-dgram n  -       n       -       1       postlogd' >>"$dir/conf/master.cf"
    postfix -c "$dir/conf" check >/dev/null 2>&1 || true
    postfix -c "$dir/conf" start >/dev/null 2>&1
    for _ in $(seq 50); do
        [ -s "$dir/queue/pid/master.pid" ] && break
        sleep 0.1
    done
    tr -d ' ' <"$dir/queue/pid/master.pid"
    ;;
stop)
    pid=$(tr -d ' ' <"$dir/queue/pid/master.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || exit 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    ;;
esac
