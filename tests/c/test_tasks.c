/*
 * Unit tests of the task scheduler and the transfer mux (tasks.c) without Lua: fibers that
 * sleep wake in the order of their deadlines, each finished transfer reaches the fiber that
 * started it and no other, and outside a task the mux is the private multi handle it was.
 */
#include <string.h>

#include <curl/curl.h>

#include "tasks.h"
#include "transfer.h"

#include "check.h"

static char order[16];
static size_t norder;

static void mark(char c) {
  if (norder < sizeof order - 1)
    order[norder++] = c;
}

static void sleeper(void *ud) {
  const char *what = ud; /* "<mark><hundredths>" */
  if (what[1] != '0')
    CHECK(transfer_task_sleep((what[1] - '0') / 100.0) == (tasks_concurrent() ? 0 : -1));
  mark(what[0]);
}

static void run_all(tasks_sched *s, tasks_fiber **f, int n) {
  int i, left = n;
  while (left > 0) {
    CHECK(tasks_sched_step(s, 0.1) == 0);
    for (i = 0, left = 0; i < n; i++)
      left += !tasks_fiber_done(f[i]);
  }
  for (i = 0; i < n; i++)
    tasks_fiber_free(f[i]);
}

static void test_sleepers(void) {
  static const char *what[] = {"A5", "B0", "C2"};
  tasks_sched *s = tasks_sched_new();
  tasks_fiber *f[3];
  int i;
  CHECK(s != NULL);
  norder = 0;
  memset(order, 0, sizeof order);
  for (i = 0; i < 3; i++)
    f[i] = tasks_fiber_new(s, sleeper, (void *)what[i]);
  run_all(s, f, 3);
  /* with fibers the one that does not sleep ends first, then the shorter sleep */
  CHECK(strcmp(order, tasks_concurrent() ? "BCA" : "ABC") == 0);
  tasks_sched_free(s);
}

/* Starts a request to a closed port of this machine and waits for its end: the refusal
 * must come to this fiber, for this handle. */
typedef struct fetcher {
  CURL *easy;
  CURLcode result;
  int got, shared, foreign;
  CURLM *multi;
} fetcher;

static void fetch_closed(void *ud) {
  fetcher *x = ud;
  transfer_mux m;
  CURL *e;
  CURLcode rc;
  CHECK(transfer_mux_open(&m, 0) == 0);
  x->shared = m.fiber != NULL;
  x->multi = m.multi;
  CHECK(transfer_mux_add(&m, x->easy) == CURLM_OK);
  while (!x->got) {
    CHECK(transfer_mux_perform(&m) == CURLM_OK);
    while (transfer_mux_done(&m, &e, &rc)) {
      if (e == x->easy) {
        x->got = 1;
        x->result = rc;
      } else {
        x->foreign++;
      }
    }
    if (!x->got)
      CHECK(transfer_mux_wait(&m, 100) == CURLM_OK);
  }
  transfer_mux_remove(&m, x->easy);
  transfer_mux_close(&m);
}

static void test_routing(void) {
  tasks_sched *s = tasks_sched_new();
  tasks_fiber *f[3];
  fetcher x[3];
  int i;
  memset(x, 0, sizeof x);
  for (i = 0; i < 3; i++) {
    x[i].easy = curl_easy_init();
    curl_easy_setopt(x[i].easy, CURLOPT_URL, "http://127.0.0.1:1/");
    curl_easy_setopt(x[i].easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    f[i] = tasks_fiber_new(s, fetch_closed, &x[i]);
  }
  run_all(s, f, 3);
  for (i = 0; i < 3; i++) {
    CHECK(x[i].got);
    CHECK(x[i].result == CURLE_COULDNT_CONNECT);
    CHECK(x[i].foreign == 0);
    CHECK(x[i].shared == tasks_concurrent());
    curl_easy_cleanup(x[i].easy);
  }
  if (tasks_concurrent()) /* one multi handle for all */
    CHECK(x[0].multi == x[1].multi && x[1].multi == x[2].multi);
  tasks_sched_free(s);
}

static void test_outside(void) {
  fetcher x;
  memset(&x, 0, sizeof x);
  CHECK(tasks_sched_current() == NULL);
  CHECK(!tasks_in_task());
  CHECK(transfer_task_sleep(0.01) == -1);
  x.easy = curl_easy_init();
  curl_easy_setopt(x.easy, CURLOPT_URL, "http://127.0.0.1:1/");
  fetch_closed(&x); /* on a private multi handle */
  CHECK(!x.shared);
  CHECK(x.got && x.result == CURLE_COULDNT_CONNECT);
  curl_easy_cleanup(x.easy);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  test_outside();
  test_sleepers();
  test_routing();
  curl_global_cleanup();
  if (failures == 0)
    printf("test_tasks: ok (%s)\n", tasks_concurrent() ? "fibers" : "one after the other");
  return failures != 0;
}
