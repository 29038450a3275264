/* test_directory_life.c - the directory over its life at a real casenetd:
 * revocation is final at publish (a newer directory re-activating a revoked
 * member is refused), the audit network cannot change mid-log (the log still
 * verifies from index 0 with `casenet audit verify --full`), an expired
 * directory starts the broker (reads and receipts served, new Submits
 * DIRECTORY_EXPIRED until a newer one is published), a restart never rolls
 * back to an older directory file (and fails closed when the store's version
 * cannot be had), and a CURVE key past its valid_until fails the handshake
 * and its open connection's next request. */
#include "network.h"
#include "testlib.h"

#include "crypto.h"
#include "keys_impl.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOTLINE "vn.hotline111"
#define POLICE  "vn.police.a05"
#define MOLISA  "vn.molisa"
#define COORD   "vn.coord"
#define HOUR_MS (3600LL * 1000)
/* How long a directory or key that is meant to lapse during a test stays
 * valid: long enough for a publish on a loaded machine. */
#define LAPSE_MS 5000

static const char *const members[] = {
    HOTLINE ":intake",
    POLICE ":responder:police",
    MOLISA ":responder",
    COORD ":coordinator",
};

static void rfree(Casenet__V1__Response *r)
{
    casenet__v1__response__free_unpacked(r, NULL);
}

static int setup(void **state)
{
    *state = tn_new(members, 4);
    return 0;
}

static int teardown(void **state)
{
    tn_free(*state);
    return 0;
}

/* Makes net's directory signed_dir (reparsed now). */
static void set_directory(tn_network *tn, casenet_buf *signed_dir)
{
    casenet_buf_free(&tn->net->signed_dir);
    tn->net->signed_dir = *signed_dir;
    *signed_dir = (casenet_buf){0};
    tl_net_reload(tn->net);
}

/* What the network authority could sign by hand (not with casenet admin,
 * which refuses these changes): the current directory with a higher
 * version, changed by mut, valid for validity_ms from now. */
static casenet_buf resign(tn_network *tn, void (*mut)(Casenet__V1__DirectoryBody *, void *),
                          void *ctx, int64_t validity_ms)
{
    Casenet__V1__SignedDirectory *sd = casenet__v1__signed_directory__unpack(
        NULL, tn->net->signed_dir.len, tn->net->signed_dir.data);
    assert_non_null(sd);
    Casenet__V1__DirectoryBody *b =
        casenet__v1__directory_body__unpack(NULL, sd->body.len, sd->body.data);
    assert_non_null(b);
    b->version++;
    b->issued_at_ms = cn_now_ms();
    b->expires_at_ms = b->issued_at_ms + validity_ms;
    mut(b, ctx);
    size_t blen = casenet__v1__directory_body__get_packed_size(b);
    uint8_t *body = malloc(blen);
    casenet__v1__directory_body__pack(b, body);
    const uint8_t *parts[1] = {body};
    size_t lens[1] = {blen};
    casenet_buf pae = {0};
    CN_OK(cn_pae("casenet.directory.v1", 1, parts, lens, &pae));
    uint8_t sig[CASENET_SIGNATURE_BYTES];
    const char *key_id = NULL;
    cn_sign(sig, pae.data, pae.len, cn_keys_sign_sk(tn->net->authority, &key_id));
    Casenet__V1__SignedDirectory out = CASENET__V1__SIGNED_DIRECTORY__INIT;
    out.body.data = body;
    out.body.len = blen;
    out.signature.data = sig;
    out.signature.len = sizeof sig;
    out.authority_key_id = (char *)key_id;
    casenet_buf r = {.len = casenet__v1__signed_directory__get_packed_size(&out)};
    r.data = malloc(r.len);
    casenet__v1__signed_directory__pack(&out, r.data);
    casenet_buf_free(&pae);
    free(body);
    casenet__v1__directory_body__free_unpacked(b, NULL);
    casenet__v1__signed_directory__free_unpacked(sd, NULL);
    return r;
}

static Casenet__V1__Member *member_of(Casenet__V1__DirectoryBody *b, const char *id)
{
    for (size_t i = 0; i < b->n_members; i++) {
        if (strcmp(b->members[i]->id, id) == 0)
            return b->members[i];
    }
    fail_msg("%s is not in the directory", id);
    return NULL;
}

static void mut_activate(Casenet__V1__DirectoryBody *b, void *id)
{
    member_of(b, id)->status = CASENET__V1__MEMBER_STATUS__MEMBER_STATUS_ACTIVE;
}

static void mut_suspend(Casenet__V1__DirectoryBody *b, void *id)
{
    member_of(b, id)->status = CASENET__V1__MEMBER_STATUS__MEMBER_STATUS_SUSPENDED;
}

static void mut_network(Casenet__V1__DirectoryBody *b, void *name)
{
    if (b->network && b->network[0])
        free(b->network); /* "" is protobuf-c's shared default */
    b->network = strdup(name);
}

/* Closes POLICE's CURVE key at *(int64_t *)until. */
static void mut_curve_until(Casenet__V1__DirectoryBody *b, void *until)
{
    Casenet__V1__Member *m = member_of(b, POLICE);
    for (size_t i = 0; i < m->n_keys; i++) {
        if (m->keys[i]->use == CASENET__V1__KEY_USE__KEY_USE_CURVE)
            m->keys[i]->valid_until_ms = *(int64_t *)until;
    }
}

/* True when member id completes a handshake and is answered. */
static bool can_connect(tn_network *tn, const char *id)
{
    tn_conn *c = tn_connect(tn, tn_keys(tn, id));
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__Hello hello = CASENET__V1__HELLO__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_HELLO;
    req.hello = &hello;
    Casenet__V1__Response *r = tn_call(c, &req, 1500);
    bool ok = r && tn_code(r) == 0;
    if (r)
        rfree(r);
    tn_close(c);
    return ok;
}

/* Waits (10 s at most) until the wall clock passes t. The condition is
 * the clock itself: the directory or key expires at t. */
static void wait_clock_past(int64_t t)
{
    int64_t deadline = cn_mono_ms() + 10000 + (t - cn_now_ms());
    while (cn_now_ms() <= t && cn_mono_ms() < deadline)
        usleep(20000);
    assert_true(cn_now_ms() > t);
}

/* Publishes net's current directory as HOTLINE; returns the error code. */
static int publish(tn_network *tn, const casenet_buf *d, char *msg, size_t msglen)
{
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = tn_publish(h, d->data, d->len);
    int code = tn_code(r);
    if (msg)
        snprintf(msg, msglen, "%s", code ? r->error->message : "");
    rfree(r);
    tn_close(h);
    return code;
}

/* Submits a fresh referral HOTLINE -> POLICE; returns the error code (and
 * the message in msg). */
static int submit(tn_network *tn, char *msg, size_t msglen, uint8_t id[16])
{
    const char *to[] = {POLICE};
    casenet_buf env = tn_seal(tn, HOTLINE, to, 1, "directory life", id);
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = tn_submit(h, env.data, env.len);
    int code = tn_code(r);
    if (msg)
        snprintf(msg, msglen, "%s", code ? r->error->message : "");
    rfree(r);
    tn_close(h);
    casenet_buf_free(&env);
    return code;
}

/* Runs casenetd --check-config with the fixture's paths (directory file
 * dir); its exit status, its stdout and stderr in out. */
static int check_config(tn_network *tn, const char *dir, char **out)
{
    char *log = tl_path(tn->root, "check.out"), *cmd = NULL;
    assert_true(asprintf(&cmd,
                         "%s/broker/casenetd --check-config --data %s --listen tcp://127.0.0.1:1 "
                         "--key %s --directory %s --authority %s >%s 2>&1",
                         getenv("CASENET_BINARY_DIR"), tn->data_dir, tn->broker_key_path, dir,
                         tn->authority_path, log) > 0);
    int st = system(cmd);
    size_t len = 0;
    uint8_t *text = tl_read_file(log, &len);
    *out = strndup((const char *)text, len);
    free(text);
    free(cmd);
    free(log);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs the casenet CLI with args (a shell fragment); its exit status. */
static int cli(tn_network *tn, const char *args)
{
    char *cmd = NULL, *log = tl_path(tn->root, "cli.out");
    assert_true(asprintf(&cmd, "%s/clients/cli/casenet %s >%s 2>&1", getenv("CASENET_BINARY_DIR"),
                         args, log) > 0);
    int st = system(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        size_t len = 0;
        uint8_t *text = tl_read_file(log, &len);
        fprintf(stderr, "casenet %s:\n%.*s\n", args, (int)len, (const char *)text);
        free(text);
    }
    free(cmd);
    free(log);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Item 7: revocation is final at the broker too. */
static void test_publish_refuses_reactivating_a_revoked_member(void **state)
{
    tn_network *tn = *state;
    tn_start(tn);
    tl_net_set_status(tn->net, MOLISA, CASENET_MEMBER_REVOKED);
    assert_int_equal(publish(tn, &tn->net->signed_dir, NULL, 0), 0);
    assert_false(can_connect(tn, MOLISA));
    /* The library refuses the authority's tools this change ... */
    casenet_buf out = {0};
    CN_ERR(casenet_directory_set_status(tn->net->authority, tn->net->signed_dir.data,
                                        tn->net->signed_dir.len, MOLISA, CASENET_MEMBER_ACTIVE,
                                        cn_now_ms(), HOUR_MS, &out),
           CASENET_ECONFLICT);
    CN_ERR(casenet_directory_set_status(tn->net->authority, tn->net->signed_dir.data,
                                        tn->net->signed_dir.len, TN_BROKER_ID,
                                        CASENET_MEMBER_SUSPENDED, cn_now_ms(), HOUR_MS, &out),
           CASENET_EFORBIDDEN);
    /* ... and the broker refuses it signed by hand. */
    casenet_buf again = resign(tn, mut_activate, (void *)MOLISA, HOUR_MS);
    char msg[512];
    CN_ERR(publish(tn, &again, msg, sizeof msg), CASENET_ECONFLICT);
    assert_non_null(strstr(msg, "revocation is final"));
    assert_false(can_connect(tn, MOLISA));
    casenet_buf no_broker = resign(tn, mut_suspend, (void *)TN_BROKER_ID, HOUR_MS);
    CN_ERR(publish(tn, &no_broker, msg, sizeof msg), CASENET_EBADREQ);
    assert_non_null(strstr(msg, "never suspended or revoked"));
    casenet_buf_free(&no_broker);
    /* Nor does a SIGHUP with it as the --directory file bring it in. */
    tl_write_file(tn->directory_path, again.data, again.len, 0644);
    tn_signal(tn, SIGHUP);
    int64_t deadline = cn_mono_ms() + 10000;
    while (!tn_log_contains(tn, "directory_reload_refused") && cn_mono_ms() < deadline)
        usleep(20000);
    assert_true(tn_log_contains(tn, "revocation is final"));
    assert_false(can_connect(tn, MOLISA));
    casenet_buf_free(&again);
    assert_int_equal(tn_stop(tn), 0);
}

/* The origin line of a checkpoint. */
static char *origin_of(const Casenet__V1__Response *r)
{
    assert_int_equal(tn_code(r), 0);
    const char *c = (const char *)r->tree_head->checkpoint.data;
    return strndup(c, strcspn(c, "\n"));
}

/* The size line of a checkpoint. */
static uint64_t size_of(const Casenet__V1__Response *r)
{
    char *c = strndup((const char *)r->tree_head->checkpoint.data, r->tree_head->checkpoint.len);
    char *nl = strchr(c, '\n');
    uint64_t n = nl ? strtoull(nl + 1, NULL, 10) : 0;
    free(c);
    return n;
}

static Casenet__V1__Response *tree_head(tn_conn *c)
{
    Casenet__V1__Request req = CASENET__V1__REQUEST__INIT;
    Casenet__V1__GetTreeHead g = CASENET__V1__GET_TREE_HEAD__INIT;
    req.body_case = CASENET__V1__REQUEST__BODY_GET_TREE_HEAD;
    req.get_tree_head = &g;
    return tn_call(c, &req, 5000);
}

/* The broker's first head covering more than size events (20 s at most),
 * or NULL. The connection is closed before any assertion: a socket left
 * open would hang the fixture's teardown. */
static Casenet__V1__Response *head_past(tn_network *tn, uint64_t size)
{
    tn_conn *c = tn_connect(tn, tn_keys(tn, COORD));
    int64_t deadline = cn_mono_ms() + 20000;
    Casenet__V1__Response *r = NULL;
    while (cn_mono_ms() < deadline) {
        r = tree_head(c);
        if (r && tn_code(r) == 0 && size_of(r) > size)
            break;
        if (r)
            rfree(r);
        r = NULL;
        usleep(100000);
    }
    tn_close(c);
    return r;
}

/* Item 8: the audit log's origin is fixed; the whole log still verifies. */
static void test_network_change_refused_log_still_verifies(void **state)
{
    tn_network *tn = *state;
    tn_start(tn);
    uint8_t id[16];
    assert_int_equal(submit(tn, NULL, 0, id), 0);
    Casenet__V1__Response *r = head_past(tn, 0);
    assert_non_null(r);
    char *before = origin_of(r);
    assert_string_equal(before, "casenet.audit/" TN_BROKER_ID);
    uint64_t size = size_of(r);
    rfree(r);

    casenet_buf renamed = resign(tn, mut_network, (void *)"vn.elsewhere", HOUR_MS);
    char msg[512];
    CN_ERR(publish(tn, &renamed, msg, sizeof msg), CASENET_ECONFLICT);
    assert_non_null(strstr(msg, "network"));
    casenet_buf_free(&renamed);
    assert_int_equal(submit(tn, NULL, 0, id), 0);
    r = head_past(tn, size);
    assert_non_null(r);
    char *after = origin_of(r);
    rfree(r);
    assert_string_equal(after, before);

    /* casenet audit verify --full, as a coordinator's home would run it. */
    char *home = tl_path(tn->root, "home.coord"), *args = NULL;
    assert_true(asprintf(&args,
                         "init --home %s --key %s/%s.key --authority %s --directory %s "
                         "--broker %s",
                         home, tn->root, COORD, tn->authority_path, tn->directory_path,
                         tn->endpoint) > 0);
    assert_int_equal(cli(tn, args), 0);
    free(args);
    assert_true(asprintf(&args, "audit verify --full --home %s", home) > 0);
    assert_int_equal(cli(tn, args), 0);
    free(args);
    free(home);
    free(before);
    free(after);
    assert_int_equal(tn_stop(tn), 0);
}

/* Item 9: an expired directory starts the broker; reads and receipts go
 * on, new Submits are DIRECTORY_EXPIRED until a newer directory arrives. */
static void test_expired_directory_serves_reads_not_submits(void **state)
{
    tn_network *tn = *state;
    casenet_buf days = {0}, shortlived = {0};
    CN_OK(casenet_directory_renew(tn->net->authority, tn->net->signed_dir.data,
                                  tn->net->signed_dir.len, cn_now_ms(), 72 * HOUR_MS, &days));
    set_directory(tn, &days);
    tn_write_directory(tn);
    /* --check-config and the log warn within 7 days of expiry. */
    char *out = NULL;
    assert_int_equal(check_config(tn, tn->directory_path, &out), 0);
    assert_non_null(strstr(out, "WARNING: directory version"));
    assert_non_null(strstr(out, "casenet admin renew"));
    free(out);
    tn_start(tn);
    assert_true(tn_log_contains(tn, "event=directory_expiring"));
    uint8_t first[16];
    assert_int_equal(submit(tn, NULL, 0, first), 0);
    CN_OK(casenet_directory_renew(tn->net->authority, tn->net->signed_dir.data,
                                  tn->net->signed_dir.len, cn_now_ms(), LAPSE_MS, &shortlived));
    assert_int_equal(publish(tn, &shortlived, NULL, 0), 0);
    set_directory(tn, &shortlived);

    wait_clock_past(casenet_directory_expires_at(tn->net->dir));
    char msg[512];
    uint8_t second[16];
    CN_ERR(submit(tn, msg, sizeof msg, second), CASENET_EDIREXPIRED);
    assert_non_null(strstr(msg, "expired"));
    assert_non_null(strstr(msg, "casenet admin renew"));
    /* A restart under the expired directory: it starts and still serves. */
    assert_int_equal(tn_stop(tn), 0);
    assert_int_equal(check_config(tn, tn->directory_path, &out), 0);
    assert_non_null(strstr(out, "expired at"));
    free(out);
    tn_restart(tn);
    assert_true(tn_log_contains(tn, "event=directory_expired"));
    tn_conn *p = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Response *r = tn_fetch(p, first);
    int fetched = tn_code(r), verified = -1, received = -1;
    casenet_message_info info = {0};
    if (fetched == 0)
        verified = casenet_envelope_verify(tn->net->dir, r->fetch->envelope.data,
                                           r->fetch->envelope.len, &info);
    rfree(r);
    if (verified == CASENET_OK) {
        casenet_buf rc = tn_sign_receipt(tn, POLICE, first, info.envelope_hash, HOTLINE,
                                         CASENET_RECEIPT_DELIVERED, cn_now_ms());
        r = tn_send_receipt(p, rc.data, rc.len);
        received = tn_code(r);
        rfree(r);
        casenet_buf_free(&rc);
        casenet_message_info_clear(&info);
    }
    tn_close(p);
    assert_int_equal(fetched, 0);
    CN_OK(verified);
    assert_int_equal(received, 0);
    CN_ERR(submit(tn, NULL, 0, second), CASENET_EDIREXPIRED);
    /* casenet admin renew's result, published: new messages again. */
    casenet_buf renewed = {0};
    CN_OK(casenet_directory_renew(tn->net->authority, tn->net->signed_dir.data,
                                  tn->net->signed_dir.len, cn_now_ms(), HOUR_MS * 24, &renewed));
    assert_int_equal(publish(tn, &renewed, NULL, 0), 0);
    set_directory(tn, &renewed);
    assert_int_equal(submit(tn, NULL, 0, second), 0);
    assert_int_equal(tn_stop(tn), 0);
}

/* Item 25: a restart with an older directory file, in which a member
 * revoked later is active, does not bring that member back. */
static void test_restart_never_rolls_back(void **state)
{
    tn_network *tn = *state;
    casenet_buf old = {malloc(tn->net->signed_dir.len), tn->net->signed_dir.len};
    memcpy(old.data, tn->net->signed_dir.data, old.len);
    tn_start(tn);
    assert_true(can_connect(tn, MOLISA));
    /* Revoked in a directory that expires soon (the store's and the data
     * directory's copies are then expired at the restart). */
    casenet_buf revoked = {0};
    CN_OK(casenet_directory_set_status(tn->net->authority, tn->net->signed_dir.data,
                                       tn->net->signed_dir.len, MOLISA, CASENET_MEMBER_REVOKED,
                                       cn_now_ms(), LAPSE_MS, &revoked));
    assert_int_equal(publish(tn, &revoked, NULL, 0), 0);
    set_directory(tn, &revoked);
    uint64_t v_revoked = casenet_directory_version(tn->net->dir);
    assert_false(can_connect(tn, MOLISA));
    wait_clock_past(casenet_directory_expires_at(tn->net->dir));
    assert_int_equal(tn_stop(tn), 0);

    tl_write_file(tn->directory_path, old.data, old.len, 0644);
    tn_restart(tn);
    assert_false(can_connect(tn, MOLISA));
    tn_conn *h = tn_connect(tn, tn_keys(tn, HOTLINE));
    Casenet__V1__Response *r = tn_hello(h);
    assert_int_equal(tn_code(r), 0);
    assert_int_equal(r->hello->directory_version, v_revoked);
    rfree(r);
    tn_close(h);
    assert_int_equal(tn_stop(tn), 0);

    /* Without a usable copy of the store's version the broker does not
     * start, and says which version to provide. */
    char *copy = tl_path(tn->data_dir, "directory.pb"), *db = tl_path(tn->data_dir, "casenet.db");
    assert_int_equal(unlink(copy), 0);
    sqlite3 *s = NULL;
    assert_int_equal(sqlite3_open(db, &s), SQLITE_OK);
    assert_int_equal(sqlite3_exec(s, "UPDATE directories SET signed = x'00'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(s);
    char *out = NULL, want[64];
    assert_int_equal(check_config(tn, tn->directory_path, &out), 1);
    snprintf(want, sizeof want, "version %llu or higher", (unsigned long long)v_revoked);
    assert_non_null(strstr(out, want));
    free(out);
    free(db);
    free(copy);
    casenet_buf_free(&old);
}

/* Item 25: a CURVE key past its valid_until fails the handshake, and its
 * open connection's next request, although the directory was loaded while
 * it was valid. */
static void test_key_past_valid_until_fails_zap(void **state)
{
    tn_network *tn = *state;
    tn_start(tn);
    int64_t until = cn_now_ms() + LAPSE_MS;
    casenet_buf closing = resign(tn, mut_curve_until, &until, HOUR_MS);
    assert_int_equal(publish(tn, &closing, NULL, 0), 0);
    set_directory(tn, &closing);
    tn_conn *open = tn_connect(tn, tn_keys(tn, POLICE));
    Casenet__V1__Response *r = tn_hello(open);
    int before = tn_code(r);
    rfree(r);
    wait_clock_past(until);
    bool again = can_connect(tn, POLICE);
    r = tn_hello(open);
    int after = tn_code(r);
    rfree(r);
    tn_close(open);
    assert_int_equal(before, 0);
    assert_false(again);
    assert_true(tn_log_contains(tn, "outside its validity"));
    CN_ERR(after, CASENET_EUNAUTH);
    assert_true(can_connect(tn, HOTLINE));
    assert_int_equal(tn_stop(tn), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_refuses_reactivating_a_revoked_member, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_network_change_refused_log_still_verifies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expired_directory_serves_reads_not_submits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restart_never_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_past_valid_until_fails_zap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
