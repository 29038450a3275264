/*
 * audit_tool.c - a helper of tests/cli/audit.sh, not part of casenet:
 *
 *   casenet_audit_tool fill HOME TO COUNT [THREADS]
 *       seals COUNT small referrals from HOME's member to TO and submits them
 *       through the broker recorded in HOME, THREADS connections in parallel
 *       (default 4): real submissions, so real audit events, quickly.
 *   casenet_audit_tool forge-head HEX
 *       re-signs the checkpoint given in hex with a freshly generated key of
 *       the same key name and prints the forgery in hex: what a broker
 *       database rewritten by someone without the broker's key would hold.
 *
 * Exits 0 on success, 1 with a message otherwise.
 */
#include "casenet.h"
#include "checkpoint.h"
#include "testlib.h"
#include "tl_net.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS_MAX 16
#define LINE_MAX_   512

static int die(const char *what, int rc)
{
    fprintf(stderr, "casenet_audit_tool: %s: %s\n", what, rc ? casenet_strerror(rc) : "failed");
    return 1;
}

struct home_files {
    casenet_keys *keys;
    casenet_directory *dir;
    char broker[LINE_MAX_];
};

static int load_home(const char *home, struct home_files *h)
{
    char *key = tl_path(home, "member.key"), *auth = tl_path(home, "authority.pub"),
         *dirp = tl_path(home, "directory"), *state = tl_path(home, "state");
    uint8_t apk[32];
    size_t len = 0;
    int rc = casenet_keys_load(key, &h->keys);
    if (rc == CASENET_OK)
        rc = casenet_authority_pk_load(auth, apk);
    uint8_t *bytes = rc == CASENET_OK ? tl_read_file(dirp, &len) : NULL;
    if (rc == CASENET_OK)
        rc = casenet_directory_parse(bytes, len, apk, cn_now_ms(), 0, &h->dir);
    free(bytes);
    FILE *f = rc == CASENET_OK ? fopen(state, "r") : NULL;
    char line[LINE_MAX_];
    h->broker[0] = '\0';
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "broker=", 7) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(h->broker, sizeof h->broker, "%s", line + 7);
        }
    }
    if (f)
        fclose(f);
    if (rc == CASENET_OK && !h->broker[0])
        rc = CASENET_ENOTFOUND;
    free(key);
    free(auth);
    free(dirp);
    free(state);
    return rc;
}

struct job {
    struct home_files *h;
    const char *to;
    size_t count;
    int rc;
};

static void *fill_thread(void *arg)
{
    struct job *j = arg;
    casenet_client_opts o = {.endpoint = j->h->broker, .timeout_ms = 30000};
    casenet_client *c = NULL;
    j->rc = casenet_client_connect(j->h->keys, j->h->dir, &o, &c);
    casenet_buf payload = tl_referral_payload("audit test event");
    const char *to[1] = {j->to};
    casenet_seal_opts so = {.kind = CASENET_KIND_REFERRAL, .to = to, .n_to = 1};
    for (size_t i = 0; j->rc == CASENET_OK && i < j->count; i++) {
        casenet_buf env = {0};
        casenet_submit_receipt r;
        j->rc = casenet_seal(j->h->keys, j->h->dir, &so, payload.data, payload.len, &env, NULL);
        /* A real client honours RATE_LIMITED: wait as told, send the
         * same bytes again. */
        while (j->rc == CASENET_OK && (j->rc = casenet_client_submit(c, env.data, env.len, &r,
                                                                     NULL)) == CASENET_ERATELIMIT) {
            uint32_t ms = casenet_client_retry_after_ms(c);
            usleep((useconds_t)(ms ? ms : 10) * 1000);
            j->rc = CASENET_OK;
        }
        casenet_buf_free(&env);
    }
    casenet_buf_free(&payload);
    casenet_client_free(c);
    return NULL;
}

static int fill(int argc, char **argv)
{
    if (argc < 5)
        return die("usage: fill HOME TO COUNT [THREADS]", 0);
    struct home_files h = {0};
    int rc = load_home(argv[2], &h);
    if (rc != CASENET_OK)
        return die("cannot load the home", rc);
    size_t count = strtoul(argv[4], NULL, 10);
    size_t threads = argc > 5 ? strtoul(argv[5], NULL, 10) : 4;
    if (threads < 1 || threads > THREADS_MAX)
        threads = 4;
    pthread_t t[THREADS_MAX];
    struct job jobs[THREADS_MAX];
    for (size_t i = 0; i < threads; i++) {
        jobs[i] = (struct job){.h = &h, .to = argv[3], .count = count / threads};
        if (i < count % threads)
            jobs[i].count++;
        pthread_create(&t[i], NULL, fill_thread, &jobs[i]);
    }
    rc = CASENET_OK;
    for (size_t i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        if (jobs[i].rc != CASENET_OK)
            rc = jobs[i].rc;
    }
    casenet_directory_free(h.dir);
    casenet_keys_free(h.keys);
    return rc == CASENET_OK ? 0 : die("submit", rc);
}

static int forge_head(int argc, char **argv)
{
    if (argc != 3)
        return die("usage: forge-head HEX", 0);
    uint8_t in[CKPT_MAX_BYTES + 1];
    long n = tl_unhex(argv[2], in, CKPT_MAX_BYTES);
    struct ckpt_head h;
    if (n <= 0 || ckpt_parse(in, (size_t)n, &h) != CASENET_OK)
        return die("not a checkpoint", 0);
    in[n] = '\0';
    /* The key name is the signature line's: "— <name> <sig>". */
    const char *line = strstr((const char *)in, "\n\n\xe2\x80\x94 ");
    char name[CASENET_MEMBER_ID_MAX + 1] = "";
    if (!line || sscanf(line + 6, "%64s", name) != 1)
        return die("no signature line", 0);
    casenet_keys *k = NULL;
    casenet_buf out = {0};
    int rc = casenet_keys_generate(name, cn_now_ms(), &k);
    if (rc == CASENET_OK)
        rc = ckpt_sign(k, &h, &out);
    casenet_keys_free(k);
    if (rc != CASENET_OK)
        return die("sign", rc);
    char *hex = malloc(2 * out.len + 1);
    tl_hex(out.data, out.len, hex);
    printf("%s\n", hex);
    free(hex);
    casenet_buf_free(&out);
    return 0;
}

int main(int argc, char **argv)
{
    if (casenet_init() != CASENET_OK)
        return die("init", 0);
    if (argc >= 2 && strcmp(argv[1], "fill") == 0)
        return fill(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "forge-head") == 0)
        return forge_head(argc, argv);
    return die("usage: casenet_audit_tool fill HOME TO COUNT [THREADS] | forge-head HEX", 0);
}
