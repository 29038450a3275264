#!/usr/bin/env bash
# attach_progress.sh - send --attach's progress bar (issue 18 item 3): drawn
# on a terminal's stderr only (through a pty, attach_progress.py), never
# with --quiet or when stderr is a file or a pipe.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/broker.sh"

step "network and broker"
broker_up "$T/net"
write_referral "$T/referral.json"
head -c $((6 * 1024 * 1024)) /dev/urandom >"$T/evidence.bin"

step "a bar on a terminal, none with --quiet or without a terminal"
expect_exit 0 /usr/bin/python3 "$(dirname "$0")/attach_progress.py" "$CASENET" \
  "$N/home/vn.hotline111" "$T/referral.json" "$T/evidence.bin"
expect_contains "$T/out" "ok: progress bar on a terminal only"
