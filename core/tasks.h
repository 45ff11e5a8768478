/*
 * Lua-free scheduler behind skafos.tasks: several transfers at once on one libcurl multi
 * handle, each task on its own C stack (a fiber) on the calling thread, switched only where
 * a transfer waits (transfer_mux_wait, transfer_task_sleep), never inside libcurl.
 */
#ifndef SKAFOS_TASKS_H
#define SKAFOS_TASKS_H

#include <curl/curl.h>

typedef struct tasks_sched tasks_sched;
typedef struct tasks_fiber tasks_fiber;

/* Whether tasks really overlap here: 0 where the system has no ucontext (musl), and
 * tasks then run one after the other, each to its end, with the same results. */
int tasks_concurrent(void);

/* A scheduler for the calling thread, with its own multi handle. NULL when out of memory.
 * Only one runs per thread at a time (tasks_sched_current tells). */
tasks_sched *tasks_sched_new(void);
/* Every fiber must be done (tasks_fiber_done) and freed first. */
void tasks_sched_free(tasks_sched *s);

/* A fiber that will run entry(ud) on its own stack, from the next tasks_sched_step.
 * NULL when out of memory. Without ucontext it runs to its end in that step. */
tasks_fiber *tasks_fiber_new(tasks_sched *s, void (*entry)(void *ud), void *ud);
int tasks_fiber_done(const tasks_fiber *f);
/* Only once done. */
void tasks_fiber_free(tasks_fiber *f);

/* One round: drives the multi handle, hands finished transfers to the fibers that own
 * them, and runs every fiber that can go on (new, with a finished transfer, or past its
 * wake-up) until it waits again or ends; then, unless one can go on at once, waits for
 * the network up to max_wait seconds or the nearest wake-up. An interrupt is the fibers'
 * own business: their transfers poll the flag whenever they run. Returns 0, or -1 when
 * libcurl's multi handle failed (the fibers' transfer_mux_perform says so too). */
int tasks_sched_step(tasks_sched *s, double max_wait);

/* The scheduler whose fiber is running on this thread now, or NULL (outside any task, and
 * in a task run without fibers). */
tasks_sched *tasks_sched_current(void);
/* Whether a task is running on this thread now, with fibers or without. */
int tasks_in_task(void);

#endif
