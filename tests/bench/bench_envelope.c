/* bench_envelope.c - seal, verify (the broker's check) and open times for 1
 * and 24 recipients. Built with the tests, not registered with ctest:
 *   build/tests/bench_envelope [payload_bytes] [iterations] */
#include "casenet.pb-c.h"
#include "tl_net.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void check(int rc, const char *what)
{
    if (rc != CASENET_OK) {
        fprintf(stderr, "bench: %s: %s\n", what, casenet_strerror(rc));
        exit(1);
    }
}

static void run(tl_net *net, size_t n_rcpt, const casenet_buf *payload, int iters)
{
    const char **to = calloc(n_rcpt, sizeof *to);
    for (size_t i = 0; i < n_rcpt; i++)
        to[i] = net->ids[i + 1];
    casenet_seal_opts o = {.kind = CASENET_KIND_REFERRAL, .to = to, .n_to = n_rcpt};
    casenet_keys *sender = net->keys[0], *reader = net->keys[n_rcpt];
    casenet_buf env = {0};
    double t0 = now_us();
    for (int i = 0; i < iters; i++) {
        casenet_buf_free(&env);
        check(casenet_seal(sender, net->dir, &o, payload->data, payload->len, &env, NULL), "seal");
    }
    double t1 = now_us();
    for (int i = 0; i < iters; i++) {
        casenet_message_info info;
        check(casenet_envelope_verify(net->dir, env.data, env.len, &info), "verify");
        casenet_message_info_clear(&info);
    }
    double t2 = now_us();
    for (int i = 0; i < iters; i++) {
        casenet_buf out = {0};
        check(casenet_open(reader, net->dir, env.data, env.len, NULL, &out), "open");
        casenet_buf_free(&out);
    }
    double t3 = now_us();
    printf("%3zu recipient(s), payload %zu B, envelope %zu B: seal %8.1f us  verify %8.1f us  "
           "open %8.1f us\n",
           n_rcpt, payload->len, env.len, (t1 - t0) / iters, (t2 - t1) / iters, (t3 - t2) / iters);
    casenet_buf_free(&env);
    free(to);
}

int main(int argc, char **argv)
{
    size_t size = argc > 1 ? (size_t)atol(argv[1]) : 2048;
    int iters = argc > 2 ? atoi(argv[2]) : 1000;
    enum { N = 25 };
    char *specs[N];
    for (int i = 0; i < N; i++) {
        if (asprintf(&specs[i], "vn.bench%02d:responder", i) < 0)
            return 1;
    }
    tl_net *net = tl_net_new((const char *const *)specs, N);
    char *text = malloc(size + 1);
    memset(text, 'x', size);
    text[size] = '\0';
    casenet_buf payload = tl_referral_payload(text);
    run(net, 1, &payload, iters);
    run(net, 24, &payload, iters);
    casenet_buf_free(&payload);
    free(text);
    for (int i = 0; i < N; i++)
        free(specs[i]);
    tl_net_free(net);
    return 0;
}
