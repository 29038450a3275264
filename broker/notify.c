/* notify.c - sd_notify readiness, status and watchdog kicks (see notify.h). */
#include "notify.h"

#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

static int64_t watchdog_half_ms; /* 0: no watchdog */
static int64_t next_kick_ms;

void notify_init(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        watchdog_half_ms = (int64_t)(usec / 2000);
        if (watchdog_half_ms < 1)
            watchdog_half_ms = 1;
        log_event(LOG_INFO, "watchdog", "interval_ms", log_u64(usec / 1000), NULL);
    }
}

void notify_ready(const char *status)
{
    (void)sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void notify_reloading(int begin)
{
    (void)sd_notify(0, begin ? "RELOADING=1\nSTATUS=reloading the directory"
                             : "READY=1\nSTATUS=serving");
}

void notify_stopping(void)
{
    (void)sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

void notify_watchdog(int64_t now_ms)
{
    if (!watchdog_half_ms || now_ms < next_kick_ms)
        return;
    next_kick_ms = now_ms + watchdog_half_ms;
    (void)sd_notify(0, "WATCHDOG=1");
}
