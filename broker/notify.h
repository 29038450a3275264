/*
 * notify.h - systemd's notification protocol (sd_notify, Type=notify):
 * READY=1 once the store is open and the listener bound, STATUS= lines,
 * RELOADING=1 while SIGHUP's directory reload runs, STOPPING=1 on SIGTERM,
 * and the watchdog: WATCHDOG=1 sent from the event loop every half of
 * WATCHDOG_USEC, so that a loop that stops turning stops the kicks and
 * systemd restarts the service (WatchdogSec= in deploy/casenetd.service).
 * Without NOTIFY_SOCKET every call does nothing. Loop thread only.
 */
#ifndef BROKER_NOTIFY_H
#define BROKER_NOTIFY_H

#include <stdint.h>

/* Reads WATCHDOG_USEC (and WATCHDOG_PID) once. */
void notify_init(void);
/* READY=1 with a STATUS= line. */
void notify_ready(const char *status);
/* RELOADING=1 (begin) or READY=1 (end) around a reload. */
void notify_reloading(int begin);
/* STOPPING=1. */
void notify_stopping(void);
/* From the loop at each turn: WATCHDOG=1 when half the interval has passed
 * since the last one (now: cn_mono_ms). Cheap when it is not due. */
void notify_watchdog(int64_t now_ms);

#endif
