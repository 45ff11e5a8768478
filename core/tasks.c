/*
 * Lua-free scheduler for skafos.tasks and the multi handle every transfer runs on
 * (transfer_mux): each task is a fiber with its own C stack on the calling thread, so
 * thread-local state (the interrupt flag) and the single-thread rules stay true.
 */
#if defined(SKAFOS_HAVE_UCONTEXT) && defined(__APPLE__)
/* macOS declares ucontext only to X/Open programs (as the feature check compiled it). */
#define _XOPEN_SOURCE 700
#define _DARWIN_C_SOURCE
#elif defined(SKAFOS_HAVE_UCONTEXT) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* glibc shows MAP_ANONYMOUS to a strict -std=c11 only so */
#endif
#include <stdlib.h>
#include <string.h>

#include "common.h" /* skafos_task_state only: it touches no lua_State */
#include "tasks.h"
#include "transfer.h"

#ifdef SKAFOS_HAVE_UCONTEXT
#include <sys/mman.h>
#include <ucontext.h>
#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif
#endif

/* The sanitizers must be told of every switch of stacks, or they take the other stack
 * for an overflow (ASan) or mix the fibers' histories (TSan). */
#if defined(__SANITIZE_ADDRESS__)
#define TASKS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TASKS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define TASKS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TASKS_TSAN 1
#endif
#endif
#ifdef TASKS_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef TASKS_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* A task's stack: mapped, so only the pages it touches cost memory; a sanitizer's frames
 * are several times larger. Below it a page that faults instead of overflowing into
 * something else. */
#if defined(TASKS_ASAN) || defined(TASKS_TSAN)
#define STACK_SIZE (8u << 20)
#else
#define STACK_SIZE (2u << 20)
#endif
#define GUARD_SIZE (64u << 10) /* a multiple of any page size in use */

typedef struct done_msg {
  CURL *easy;
  CURLcode result;
} done_msg;

typedef struct owner {
  CURL *easy;
  tasks_fiber *f;
} owner;

struct tasks_fiber {
  tasks_sched *s;
  tasks_fiber *next; /* in s->fibers */
  void (*entry)(void *ud);
  void *ud;
  int started, done;
  double wake; /* while it waits: it goes on at this time at the latest */
  done_msg *msgs; /* finished transfers it has not taken yet (transfer_mux_done) */
  size_t nmsgs, capmsgs;
#ifdef SKAFOS_HAVE_UCONTEXT
  ucontext_t ctx;
  char *map; /* the guard, then the stack */
  void *asan_fake;
  void *tsan;
#endif
};

struct tasks_sched {
  CURLM *multi;
  tasks_fiber *fibers;
  tasks_fiber *current; /* the fiber running now, NULL on the scheduler's own stack */
  owner *owners;        /* which fiber each easy handle in the multi belongs to */
  size_t nowners, capowners;
  CURLMcode last; /* of the latest perform: the fibers' transfer_mux_perform */
#ifdef SKAFOS_HAVE_UCONTEXT
  ucontext_t main_ctx;
  const void *main_bottom; /* the scheduler's stack, for ASan */
  size_t main_size;
  void *tsan_main;
#endif
};

/* The scheduler whose fiber runs now on this thread (fibers never change threads). */
static tasks_sched *get_running(void) { return skafos_task_state()->running; }
static void set_running(tasks_sched *s) { skafos_task_state()->running = s; }

int tasks_concurrent(void) {
#ifdef SKAFOS_HAVE_UCONTEXT
  return 1;
#else
  return 0;
#endif
}

tasks_sched *tasks_sched_current(void) {
  tasks_sched *s = get_running();
  return s && s->current ? s : NULL;
}

/* skafos_task_state()->depth: tasks running one after the other (no ucontext) on this
 * thread's stack. */
int tasks_in_task(void) { return tasks_sched_current() != NULL || skafos_task_state()->depth > 0; }

tasks_sched *tasks_sched_new(void) {
  tasks_sched *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  if ((s->multi = curl_multi_init()) == NULL) {
    free(s);
    return NULL;
  }
  /* One connection per request, as pget needs for its ranges, and as a link that limits
   * each connection rewards: HTTP/2 would put every task on one of them. */
  curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
#ifdef TASKS_TSAN
  s->tsan_main = __tsan_get_current_fiber();
#endif
  return s;
}

void tasks_sched_free(tasks_sched *s) {
  if (s == NULL)
    return;
  curl_multi_cleanup(s->multi);
  free(s->owners);
  free(s);
}

tasks_fiber *tasks_fiber_new(tasks_sched *s, void (*entry)(void *ud), void *ud) {
  tasks_fiber *f = calloc(1, sizeof *f);
  if (f == NULL)
    return NULL;
#ifdef SKAFOS_HAVE_UCONTEXT
  f->map = mmap(NULL, GUARD_SIZE + STACK_SIZE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (f->map == MAP_FAILED) {
    free(f);
    return NULL;
  }
  if (mprotect(f->map, GUARD_SIZE, PROT_NONE) != 0) {
    munmap(f->map, GUARD_SIZE + STACK_SIZE);
    free(f);
    return NULL;
  }
#ifdef TASKS_TSAN
  f->tsan = __tsan_create_fiber(0);
#endif
#endif
  f->s = s;
  f->entry = entry;
  f->ud = ud;
  {
    tasks_fiber **p = &s->fibers; /* at the end: fibers start, and run, in order */
    while (*p)
      p = &(*p)->next;
    *p = f;
  }
  return f;
}

int tasks_fiber_done(const tasks_fiber *f) { return f->done; }

void tasks_fiber_free(tasks_fiber *f) {
  tasks_fiber **p;
  size_t i;
  if (f == NULL)
    return;
  /* A transfer the fiber left in the multi handle (none should) can no longer reach it. */
  for (i = 0; i < f->s->nowners;) {
    if (f->s->owners[i].f == f) {
      curl_multi_remove_handle(f->s->multi, f->s->owners[i].easy);
      f->s->owners[i] = f->s->owners[--f->s->nowners];
    } else {
      i++;
    }
  }
  for (p = &f->s->fibers; *p; p = &(*p)->next) {
    if (*p == f) {
      *p = f->next;
      break;
    }
  }
#ifdef SKAFOS_HAVE_UCONTEXT
  munmap(f->map, GUARD_SIZE + STACK_SIZE);
#ifdef TASKS_TSAN
  __tsan_destroy_fiber(f->tsan);
#endif
#endif
  free(f->msgs);
  free(f);
}

/* ---- switching ------------------------------------------------------------------------ */

#ifdef SKAFOS_HAVE_UCONTEXT
/* Where every fiber starts; `running` says which (makecontext passes no pointer
 * portably: get_running()). It ends by switching back for good: its stack is unmapped later. */
static void trampoline(void) {
  tasks_sched *s = get_running();
  tasks_fiber *f = s->current;
#ifdef TASKS_ASAN
  __sanitizer_finish_switch_fiber(NULL, &s->main_bottom, &s->main_size);
#endif
  f->entry(f->ud);
  f->done = 1;
#ifdef TASKS_ASAN
  __sanitizer_start_switch_fiber(NULL, s->main_bottom, s->main_size);
#endif
#ifdef TASKS_TSAN
  __tsan_switch_to_fiber(s->tsan_main, 0);
#endif
  setcontext(&s->main_ctx);
  abort(); /* setcontext returns only when it failed */
}
#endif

/* Runs f until it waits or ends. */
static void run_fiber(tasks_sched *s, tasks_fiber *f) {
  tasks_sched *outer = get_running();
#ifdef SKAFOS_HAVE_UCONTEXT
#ifdef TASKS_ASAN
  void *fake = NULL;
#endif
  if (!f->started) {
    f->started = 1;
    if (getcontext(&f->ctx) != 0)
      abort();
    f->ctx.uc_stack.ss_sp = f->map + GUARD_SIZE;
    f->ctx.uc_stack.ss_size = STACK_SIZE;
    f->ctx.uc_link = NULL;
    makecontext(&f->ctx, trampoline, 0);
  }
  set_running(s);
  s->current = f;
#ifdef TASKS_ASAN
  __sanitizer_start_switch_fiber(&fake, f->map + GUARD_SIZE, STACK_SIZE);
#endif
#ifdef TASKS_TSAN
  __tsan_switch_to_fiber(f->tsan, 0);
#endif
  swapcontext(&s->main_ctx, &f->ctx);
#ifdef TASKS_ASAN
  __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
  s->current = NULL;
  set_running(outer);
#else
  /* No fibers: the task runs to its end here, its transfers on private multi handles. */
  (void)s;
  f->started = 1;
  set_running(NULL);
  skafos_task_state()->depth++;
  f->entry(f->ud);
  skafos_task_state()->depth--;
  f->done = 1;
  set_running(outer);
#endif
}

#ifdef SKAFOS_HAVE_UCONTEXT
/* From a fiber: back to the scheduler until it runs this one again, at `wake` at the
 * latest (or as soon as a transfer of it finishes). */
static void fiber_wait(tasks_fiber *f, double wake) {
  tasks_sched *s = f->s;
  f->wake = wake;
#ifdef TASKS_ASAN
  __sanitizer_start_switch_fiber(&f->asan_fake, s->main_bottom, s->main_size);
#endif
#ifdef TASKS_TSAN
  __tsan_switch_to_fiber(s->tsan_main, 0);
#endif
  swapcontext(&f->ctx, &s->main_ctx);
#ifdef TASKS_ASAN
  __sanitizer_finish_switch_fiber(f->asan_fake, &s->main_bottom, &s->main_size);
#endif
}
#endif

/* ---- the round ------------------------------------------------------------------------ */

static tasks_fiber *owner_of(tasks_sched *s, CURL *easy) {
  size_t i;
  for (i = 0; i < s->nowners; i++)
    if (s->owners[i].easy == easy)
      return s->owners[i].f;
  return NULL;
}

int tasks_sched_step(tasks_sched *s, double max_wait) {
  int still = 0, left = 0, rc = 0, ready = 0;
  CURLMsg *m;
  tasks_fiber *f;
  double now, nearest;
  if ((s->last = curl_multi_perform(s->multi, &still)) != CURLM_OK)
    rc = -1;
  while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
    tasks_fiber *o;
    if (m->msg != CURLMSG_DONE || (o = owner_of(s, m->easy_handle)) == NULL)
      continue;
    if (o->nmsgs == o->capmsgs) {
      size_t cap = o->capmsgs ? 2 * o->capmsgs : 8;
      done_msg *p = realloc(o->msgs, cap * sizeof *p);
      if (p == NULL) {
        rc = -1; /* the transfer then ends as the multi handle's failure */
        continue;
      }
      o->msgs = p;
      o->capmsgs = cap;
    }
    o->msgs[o->nmsgs].easy = m->easy_handle;
    o->msgs[o->nmsgs].result = m->data.result;
    o->nmsgs++;
  }
  now = transfer_now();
  for (f = s->fibers; f; f = f->next)
    if (!f->done && (!f->started || f->nmsgs > 0 || now >= f->wake || rc != 0))
      run_fiber(s, f);
  /* Nothing to do until the network moves or a fiber's time comes. */
  now = transfer_now();
  nearest = now + max_wait;
  for (f = s->fibers; f; f = f->next) {
    if (f->done)
      continue;
    if (!f->started || f->nmsgs > 0)
      ready = 1;
    else if (f->wake < nearest)
      nearest = f->wake;
  }
  if (!ready && nearest > now) {
    int ms = (int)((nearest - now) * 1000.0) + 1;
    if (curl_multi_poll(s->multi, NULL, 0, ms, NULL) != CURLM_OK)
      rc = -1;
  }
  return rc;
}

/* ---- the mux ------------------------------------------------------------------------- */

int transfer_mux_open(transfer_mux *m, int one_each) {
  tasks_sched *s = tasks_sched_current();
  if (s != NULL) {
    m->multi = s->multi;
    m->fiber = s->current;
    return 0;
  }
  m->fiber = NULL;
  if ((m->multi = curl_multi_init()) == NULL)
    return -1;
  if (one_each)
    curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
  return 0;
}

void transfer_mux_close(transfer_mux *m) {
  if (m->fiber == NULL && m->multi != NULL)
    curl_multi_cleanup(m->multi);
  m->multi = NULL;
}

CURLMcode transfer_mux_add(transfer_mux *m, CURL *easy) {
  CURLMcode mc = curl_multi_add_handle(m->multi, easy);
  tasks_sched *s;
  if (mc != CURLM_OK || m->fiber == NULL)
    return mc;
  s = m->fiber->s;
  if (s->nowners == s->capowners) {
    size_t cap = s->capowners ? 2 * s->capowners : 16;
    owner *p = realloc(s->owners, cap * sizeof *p);
    if (p == NULL) {
      curl_multi_remove_handle(m->multi, easy);
      return CURLM_OUT_OF_MEMORY;
    }
    s->owners = p;
    s->capowners = cap;
  }
  s->owners[s->nowners].easy = easy;
  s->owners[s->nowners].f = m->fiber;
  s->nowners++;
  return CURLM_OK;
}

void transfer_mux_remove(transfer_mux *m, CURL *easy) {
  tasks_fiber *f = m->fiber;
  size_t i, j;
  curl_multi_remove_handle(m->multi, easy);
  if (f == NULL)
    return;
  for (i = 0; i < f->s->nowners; i++) {
    if (f->s->owners[i].easy == easy) {
      f->s->owners[i] = f->s->owners[--f->s->nowners];
      break;
    }
  }
  for (i = j = 0; i < f->nmsgs; i++)
    if (f->msgs[i].easy != easy)
      f->msgs[j++] = f->msgs[i];
  f->nmsgs = j;
}

CURLMcode transfer_mux_perform(transfer_mux *m) {
  int still = 0;
  if (m->fiber != NULL)
    return m->fiber->s->last; /* the scheduler drives the shared handle */
  return curl_multi_perform(m->multi, &still);
}

int transfer_mux_done(transfer_mux *m, CURL **easy, CURLcode *result) {
  CURLMsg *msg;
  int left = 0;
  tasks_fiber *f = m->fiber;
  if (f != NULL) {
    if (f->nmsgs == 0)
      return 0;
    *easy = f->msgs[0].easy;
    *result = f->msgs[0].result;
    memmove(f->msgs, f->msgs + 1, (f->nmsgs - 1) * sizeof *f->msgs);
    f->nmsgs--;
    return 1;
  }
  while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
    if (msg->msg == CURLMSG_DONE) {
      *easy = msg->easy_handle;
      *result = msg->data.result;
      return 1;
    }
  }
  return 0;
}

CURLMcode transfer_mux_wait(transfer_mux *m, long ms) {
#ifdef SKAFOS_HAVE_UCONTEXT
  if (m->fiber != NULL) {
    if (m->fiber->nmsgs == 0)
      fiber_wait(m->fiber, transfer_now() + (double)ms / 1000.0);
    return CURLM_OK;
  }
#endif
  return curl_multi_poll(m->multi, NULL, 0, (int)ms, NULL);
}

int transfer_task_sleep(double seconds) {
#ifdef SKAFOS_HAVE_UCONTEXT
  tasks_sched *s = tasks_sched_current();
  if (s == NULL)
    return -1;
  fiber_wait(s->current, transfer_now() + (seconds > 0 ? seconds : 0));
  return 0;
#else
  (void)seconds;
  return -1;
#endif
}
