/*
 * test_console_api.c - the console's JSON API over real HTTP: a loopback
 * network (tests/testlib/network.c) with a real casenetd, member homes made
 * by the real `casenet init`, staff accounts by `casenet console user add`
 * and two running `casenet console` processes (hotline, police). The HTTP
 * client is a plain socket: requests are written byte for byte, so the
 * tests control every header (Host, Cookie, X-CSRF-Token, Origin).
 */
#include "network.h"
#include "testlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define HOTLINE     "vn.hotline111"
#define POLICE      "vn.police.a05"
#define PASSWORD    "a long enough password"
#define PUBLIC_HOST "console.police.example"

static const char *const members[] = {
    HOTLINE ":intake:hotline",
    POLICE ":responder:police",
};

struct console_proc {
    pid_t pid;
    int port;
    char home[512];
};

struct fixture {
    tn_network *tn;
    struct console_proc hl, po;
};

/* A tenth of a second, between polls. */
static void nap(void)
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static const char *casenet_bin(void)
{
    const char *b = getenv("CASENET");
    assert_non_null(b);
    return b;
}

/* Runs argv with stdin_text on its stdin; returns its exit status. */
static int run(const char *stdin_text, const char *const argv[])
{
    int in[2];
    assert_int_equal(pipe(in), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        close(in[1]);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    if (stdin_text)
        assert_int_equal(write(in[1], stdin_text, strlen(stdin_text)), (ssize_t)strlen(stdin_text));
    close(in[1]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void make_home(tn_network *tn, const char *id, const char *user, const char *role,
                      struct console_proc *cp)
{
    char key[512], auth[512];
    snprintf(cp->home, sizeof cp->home, "%s/home-%s", tn->root, id);
    snprintf(key, sizeof key, "%s/%s.key", tn->root, id);
    snprintf(auth, sizeof auth, "%s", tn->authority_path);
    const char *init[] = {casenet_bin(), "init",        "--home", cp->home,      "--key",
                          key,           "--authority", auth,     "--directory", tn->directory_path,
                          "--broker",    tn->endpoint,  NULL};
    assert_int_equal(run(NULL, init), 0);
    const char *add[] = {casenet_bin(), "console", "user",   "add",    user,
                         "--role",      role,      "--home", cp->home, NULL};
    assert_int_equal(run(PASSWORD "\n", add), 0);
}

/* Starts `casenet console` on a free port and reads it from its stdout. */
static void start_console(struct console_proc *cp)
{
    char out[600], assets[512];
    snprintf(out, sizeof out, "%s.out", cp->home);
    snprintf(assets, sizeof assets, "%s/clients/console/www", getenv("CASENET_SOURCE_DIR"));
    unlink(out); /* a restart must not read the last run's address */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(out, "w", stdout);
        (void)f;
        /* the police's console is also served through a (pretend) proxy */
        execl(casenet_bin(), casenet_bin(), "console", "--home", cp->home, "--listen",
              "127.0.0.1:0", "--assets", assets, "--public-host",
              strstr(cp->home, POLICE) ? PUBLIC_HOST : "unused.example", (char *)NULL);
        _exit(127);
    }
    cp->pid = pid;
    for (int i = 0; i < 400; i++) {
        size_t len = 0;
        FILE *f = fopen(out, "r");
        char line[256] = "";
        if (f) {
            len = fread(line, 1, sizeof line - 1, f);
            fclose(f);
        }
        line[len] = '\0';
        const char *p = strstr(line, "http://127.0.0.1:");
        if (p) {
            cp->port = atoi(p + strlen("http://127.0.0.1:"));
            return;
        }
        nap();
    }
    fail_msg("the console did not start");
}

/* SIGTERM and wait: the console's exit status, -1 when a signal ended it
 * (0 when none runs). Never asserts, so that teardown stops every process. */
static int stop_quiet(struct console_proc *cp)
{
    if (cp->pid <= 0)
        return 0;
    kill(cp->pid, SIGTERM);
    int st = 0;
    pid_t got = waitpid(cp->pid, &st, 0);
    cp->pid = 0;
    return got > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A clean stop: exit status 0. */
static void stop_console(struct console_proc *cp)
{
    assert_int_equal(stop_quiet(cp), 0);
}

/* ------------------------------------------------------------ HTTP */

struct http {
    int status;
    char headers[4096];
    char *body;
    json_t *json;
};

static void http_clear(struct http *h)
{
    free(h->body);
    json_decref(h->json);
    memset(h, 0, sizeof *h);
}

/* Sends one request; extra is more header lines ("Name: value\r\n...") or
 * NULL; host NULL means the right one. */
static void http(int port, const char *method, const char *path, const char *host,
                 const char *extra, const char *body, struct http *out)
{
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char hostbuf[64];
    if (!host) {
        snprintf(hostbuf, sizeof hostbuf, "127.0.0.1:%d", port);
        host = hostbuf;
    }
    size_t blen = body ? strlen(body) : 0;
    char *req = NULL;
    int n = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, host, extra ? extra : "",
                     body ? "Content-Type: application/json\r\n" : "", blen, body ? body : "");
    assert_true(n > 0);
    assert_int_equal(write(fd, req, (size_t)n), n);
    free(req);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &out->status), 1);
    char *sep = strstr(buf, "\r\n\r\n");
    assert_non_null(sep);
    snprintf(out->headers, sizeof out->headers, "%.*s", (int)(sep - buf), buf);
    out->body = strdup(sep + 4);
    out->json = json_loads(out->body, 0, NULL);
    free(buf);
}

/* One request whose answer must have status want. */
static void expect(int port, const char *method, const char *path, const char *extra,
                   const char *body, int want)
{
    struct http h;
    http(port, method, path, NULL, extra, body, &h);
    if (h.status != want)
        fail_msg("%s %s: %d, not %d: %s", method, path, h.status, want, h.body);
    http_clear(&h);
}

/* Logs in; writes the cookie header line and the CSRF token. */
static int login(int port, const char *user, const char *password, char cookie[128], char csrf[65])
{
    char body[256];
    snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", user, password);
    struct http h;
    http(port, "POST", "/api/v1/session", NULL, NULL, body, &h);
    int status = h.status;
    if (status == 200) {
        /* named by port: two consoles on one host keep apart sessions */
        char name[64];
        snprintf(name, sizeof name, "Set-Cookie: cn_session_%d=", port);
        char *c = strstr(h.headers, name);
        assert_non_null(c);
        assert_non_null(strstr(c, "HttpOnly"));
        assert_non_null(strstr(c, "SameSite=Strict"));
        c += strlen("Set-Cookie: ");
        snprintf(cookie, 128, "Cookie: %.*s\r\n", (int)strcspn(c, ";"), c);
        snprintf(csrf, 65, "%s", json_string_value(json_object_get(h.json, "csrf")));
    }
    http_clear(&h);
    return status;
}

/* ------------------------------------------------------------ fixture */

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->tn = tn_new(members, 2);
    tn_start(f->tn);
    make_home(f->tn, HOTLINE, "lan", "caseworker", &f->hl);
    make_home(f->tn, POLICE, "minh", "supervisor", &f->po);
    const char *viewer[] = {casenet_bin(), "console", "user",   "add",      "xem",
                            "--role",      "viewer",  "--home", f->po.home, NULL};
    assert_int_equal(run(PASSWORD "\n", viewer), 0);
    start_console(&f->hl);
    start_console(&f->po);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int hl = stop_quiet(&f->hl), po = stop_quiet(&f->po);
    tn_free(f->tn);
    free(f);
    assert_int_equal(hl, 0);
    assert_int_equal(po, 0);
    return 0;
}

/* ------------------------------------------------------------ tests */

static void test_headers_and_host(void **state)
{
    struct fixture *f = *state;
    struct http h;
    http(f->hl.port, "GET", "/", NULL, NULL, NULL, &h);
    assert_int_equal(h.status, 200);
    assert_non_null(
        strstr(h.headers, "Content-Security-Policy: default-src 'none'; script-src 'self'"));
    assert_non_null(strstr(h.headers, "frame-ancestors 'none'"));
    assert_non_null(strstr(h.headers, "X-Content-Type-Options: nosniff"));
    assert_non_null(strstr(h.headers, "Cache-Control: no-store"));
    http_clear(&h);
    /* DNS rebinding: another name for our address is refused */
    http(f->hl.port, "GET", "/", "attacker.example:80", NULL, NULL, &h);
    assert_int_equal(h.status, 421);
    http_clear(&h);
    /* the --public-host a TLS proxy forwards, with its https origin */
    http(f->po.port, "GET", "/", PUBLIC_HOST, NULL, NULL, &h);
    assert_int_equal(h.status, 200);
    http_clear(&h);
    http(f->po.port, "POST", "/api/v1/session", PUBLIC_HOST, "Origin: https://" PUBLIC_HOST "\r\n",
         "{\"username\":\"minh\",\"password\":\"" PASSWORD "\"}", &h);
    assert_int_equal(h.status, 200);
    assert_non_null(strstr(h.headers, "; Secure"));
    http_clear(&h);
    http(f->po.port, "POST", "/api/v1/session", PUBLIC_HOST, "Origin: http://" PUBLIC_HOST "\r\n",
         "{\"username\":\"minh\",\"password\":\"" PASSWORD "\"}", &h);
    assert_int_equal(h.status, 403);
    http_clear(&h);
    /* no way out of the assets directory */
    expect(f->hl.port, "GET", "/../member.key", NULL, NULL, 404);
    expect(f->hl.port, "GET", "/i18n/../../console.db", NULL, NULL, 404);
    /* the API needs a session */
    http(f->hl.port, "GET", "/api/v1/inbox", NULL, NULL, NULL, &h);
    assert_int_equal(h.status, 401);
    assert_string_equal(json_string_value(json_object_get(h.json, "error")), "UNAUTHENTICATED");
    http_clear(&h);
    /* a body over the limit is refused before it is read */
    char *huge = malloc(5000);
    memset(huge, 'x', 4999);
    huge[4999] = 0;
    expect(f->hl.port, "POST", "/api/v1/session", NULL, huge, 413);
    free(huge);
}

static void test_login_and_rate_limit(void **state)
{
    struct fixture *f = *state;
    char cookie[128], csrf[65];
    assert_int_equal(login(f->po.port, "minh", "wrong password", cookie, csrf), 401);
    assert_int_equal(login(f->po.port, "nobody", "wrong password", cookie, csrf), 401);
    int last = 0;
    for (int i = 0; i < 6; i++)
        last = login(f->po.port, "nobody", "wrong password", cookie, csrf);
    assert_int_equal(last, 429);
    /* even the right password of a locked name waits: use another name */
    assert_int_equal(login(f->po.port, "minh", PASSWORD, cookie, csrf), 200);
}

static void test_csrf_and_roles(void **state)
{
    struct fixture *f = *state;
    char cookie[128], csrf[65], hdr[256];
    assert_int_equal(login(f->hl.port, "lan", PASSWORD, cookie, csrf), 200);
    const char *send = "{\"kind\":\"referral\",\"to\":[\"" POLICE "\"],\"urgency\":\"emergency\","
                       "\"payload\":{\"referral\":{\"summary\":\"x\"}}}";
    struct http h;
    /* no token */
    expect(f->hl.port, "POST", "/api/v1/messages", cookie, send, 403);
    /* a wrong token */
    snprintf(hdr, sizeof hdr, "%sX-CSRF-Token: %064d\r\n", cookie, 0);
    expect(f->hl.port, "POST", "/api/v1/messages", hdr, send, 403);
    /* the right token from another origin */
    snprintf(hdr, sizeof hdr, "%sX-CSRF-Token: %s\r\nOrigin: http://evil.example\r\n", cookie,
             csrf);
    expect(f->hl.port, "POST", "/api/v1/messages", hdr, send, 403);
    /* urgency chosen once: a payload naming another one is refused, by field */
    snprintf(hdr, sizeof hdr, "%sX-CSRF-Token: %s\r\n", cookie, csrf);
    http(f->hl.port, "POST", "/api/v1/messages", NULL, hdr,
         "{\"kind\":\"referral\",\"to\":[\"" POLICE "\"],\"urgency\":\"emergency\","
         "\"payload\":{\"referral\":{\"urgency\":\"URGENCY_STANDARD\"}}}",
         &h);
    assert_int_equal(h.status, 400);
    assert_string_equal(json_string_value(json_object_get(h.json, "field")),
                        "payload.referral.urgency");
    http_clear(&h);
    /* a bad payload field is named */
    http(f->hl.port, "POST", "/api/v1/messages", NULL, hdr,
         "{\"kind\":\"referral\",\"to\":[\"" POLICE "\"],\"urgency\":\"emergency\","
         "\"payload\":{\"referral\":{\"nosuchfield\":1}}}",
         &h);
    assert_int_equal(h.status, 400);
    assert_non_null(strstr(json_string_value(json_object_get(h.json, "message")), "nosuchfield"));
    http_clear(&h);
    /* a viewer may not read content or sign */
    assert_int_equal(login(f->po.port, "xem", PASSWORD, cookie, csrf), 200);
    http(f->po.port, "GET", "/api/v1/messages/00112233445566778899aabbccddeeff", NULL, cookie, NULL,
         &h);
    assert_int_equal(h.status, 403);
    http_clear(&h);
    expect(f->po.port, "GET", "/api/v1/ledger", cookie, NULL, 403);
}

/* Sends, reads, accepts; the sender sees the verified receipt; the ledger
 * names the reader and the signer. */
static void test_referral_round_trip(void **state)
{
    struct fixture *f = *state;
    char hc[128], hcsrf[65], pc[128], pcsrf[65], hdr[256], path[128];
    assert_int_equal(login(f->hl.port, "lan", PASSWORD, hc, hcsrf), 200);
    assert_int_equal(login(f->po.port, "minh", PASSWORD, pc, pcsrf), 200);
    snprintf(hdr, sizeof hdr, "%sX-CSRF-Token: %s\r\n", hc, hcsrf);
    const char *send =
        "{\"kind\":\"referral\",\"to\":[\"@police\"],\"urgency\":\"emergency\","
        "\"draft_id\":\"0123456789abcdef0123456789abcdef\",\"payload\":{\"referral\":"
        "{\"caseId\":\"HL-TEST-0001\",\"summary\":\"Trẻ em <script>alert(1)</script>\","
        "\"harmCategories\":[\"HARM_CATEGORY_SEXTORTION\"],"
        "\"legalBasis\":{\"kind\":\"LEGAL_BASIS_KIND_VITAL_INTEREST\"}}}}";
    struct http h, h2;
    http(f->hl.port, "POST", "/api/v1/messages", NULL, hdr, send, &h);
    assert_int_equal(h.status, 200);
    const char *id = json_string_value(json_object_get(h.json, "id"));
    assert_non_null(id);
    assert_true(json_is_true(json_object_get(json_object_get(h.json, "receipt"), "verified")));
    /* the same draft again: the same message, a duplicate at the broker */
    http(f->hl.port, "POST", "/api/v1/messages", NULL, hdr, send, &h2);
    assert_int_equal(h2.status, 200);
    assert_string_equal(json_string_value(json_object_get(h2.json, "id")), id);
    assert_true(json_is_true(json_object_get(h2.json, "duplicate")));
    http_clear(&h2);

    /* filters: a list of kinds, none of which matches */
    http(f->po.port, "GET", "/api/v1/inbox?kind=escalation,dead-letter", NULL, pc, NULL, &h2);
    assert_int_equal(h2.status, 200);
    assert_int_equal(json_integer_value(json_object_get(h2.json, "total")), 0);
    http_clear(&h2);
    http(f->po.port, "GET", "/api/v1/inbox?kind=status,referral&urgency=emergency", NULL, pc, NULL,
         &h2);
    assert_int_equal(json_integer_value(json_object_get(h2.json, "total")), 1);
    http_clear(&h2);
    /* the police inbox lists it once, newest first */
    http(f->po.port, "GET", "/api/v1/inbox", NULL, pc, NULL, &h2);
    assert_int_equal(h2.status, 200);
    assert_int_equal(json_integer_value(json_object_get(h2.json, "total")), 1);
    json_t *row = json_array_get(json_object_get(h2.json, "rows"), 0);
    assert_string_equal(json_string_value(json_object_get(row, "id")), id);
    assert_string_equal(json_string_value(json_object_get(row, "urgency")), "emergency");
    /* its deadlines, for the countdown: deliver and accept, pending */
    json_t *dl = json_object_get(row, "deadlines");
    assert_true(json_array_size(dl) >= 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(dl, 0), "state")),
                        "pending");
    http_clear(&h2);

    /* read: decrypted payload, urgency copied from the header, verified */
    snprintf(path, sizeof path, "/api/v1/messages/%s", id);
    http(f->po.port, "GET", path, NULL, pc, NULL, &h2);
    assert_int_equal(h2.status, 200);
    assert_non_null(strstr(h2.headers, "Cache-Control: no-store"));
    json_t *ref = json_object_get(json_object_get(h2.json, "payload"), "referral");
    assert_string_equal(json_string_value(json_object_get(ref, "summary")),
                        "Trẻ em <script>alert(1)</script>");
    assert_string_equal(json_string_value(json_object_get(ref, "urgency")), "URGENCY_EMERGENCY");
    assert_string_equal(json_string_value(json_object_get(h2.json, "signature")), "verified");
    assert_string_equal(json_string_value(json_object_get(h2.json, "from")), HOTLINE);
    http_clear(&h2);

    /* decline without a reason is refused by field; accept works */
    snprintf(hdr, sizeof hdr, "%sX-CSRF-Token: %s\r\n", pc, pcsrf);
    snprintf(path, sizeof path, "/api/v1/messages/%s/receipts", id);
    http(f->po.port, "POST", path, NULL, hdr, "{\"status\":\"declined\"}", &h2);
    assert_int_equal(h2.status, 400);
    assert_string_equal(json_string_value(json_object_get(h2.json, "field")), "reason");
    http_clear(&h2);
    http(f->po.port, "POST", path, NULL, hdr, "{\"status\":\"accepted\"}", &h2);
    assert_int_equal(h2.status, 200);
    http_clear(&h2);

    /* the hotline's sent view: accepted; the status: a verified receipt */
    http(f->hl.port, "GET", "/api/v1/sent", NULL, hc, NULL, &h2);
    assert_int_equal(h2.status, 200);
    json_t *m = json_array_get(json_object_get(h2.json, "rows"), 0);
    assert_true(json_is_true(json_object_get(m, "broker_receipt_verified")));
    json_t *rc = json_array_get(json_object_get(m, "recipients"), 0);
    assert_string_equal(json_string_value(json_object_get(rc, "state")), "accepted");
    http_clear(&h2);
    snprintf(path, sizeof path, "/api/v1/messages/%s/status", id);
    http(f->hl.port, "GET", path, NULL, hc, NULL, &h2);
    assert_int_equal(h2.status, 200);
    json_t *steps =
        json_object_get(json_array_get(json_object_get(h2.json, "recipients"), 0), "steps");
    json_t *last = json_array_get(steps, json_array_size(steps) - 1);
    json_t *receipt = json_object_get(last, "receipt");
    assert_true(json_is_true(json_object_get(receipt, "verified")));
    assert_string_equal(json_string_value(json_object_get(receipt, "status")), "accepted");
    http_clear(&h2);

    /* the ledger: minh read it, then signed accepted */
    http(f->po.port, "GET", "/api/v1/ledger", NULL, pc, NULL, &h2);
    assert_int_equal(h2.status, 200);
    json_t *rows = json_object_get(h2.json, "rows");
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "action")),
                        "receipt:accepted");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "action")),
                        "read");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "user")),
                        "minh");
    http_clear(&h2);

    /* and the CLI exports it */
    char cmd[1400], out[600];
    snprintf(out, sizeof out, "%s.ledger", f->po.home);
    snprintf(cmd, sizeof cmd, "'%s' console ledger --home '%s' > '%s'", casenet_bin(), f->po.home,
             out);
    assert_int_equal(system(cmd), 0);
    json_t *exported = json_load_file(out, 0, NULL);
    assert_int_equal(json_array_size(exported), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(exported, 0), "action")),
                        "receipt:accepted");
    json_decref(exported);

    /* a reveal is refused for an odd field name, recorded otherwise */
    snprintf(hdr, sizeof hdr, "%sX-CSRF-Token: %s\r\n", pc, pcsrf);
    snprintf(path, sizeof path, "/api/v1/messages/%s/reveal", id);
    expect(f->po.port, "POST", path, hdr, "{\"field\":\"<b>\"}", 400);
    expect(f->po.port, "POST", path, hdr, "{\"field\":\"referral.children[0].name\"}", 200);
    http(f->po.port, "GET", "/api/v1/ledger", NULL, pc, NULL, &h2);
    rows = json_object_get(h2.json, "rows");
    assert_int_equal(json_array_size(rows), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "action")),
                        "reveal:referral.children[0].name");
    http_clear(&h2);

    /* logout ends the session */
    snprintf(hdr, sizeof hdr, "%sX-CSRF-Token: %s\r\n", hc, hcsrf);
    expect(f->hl.port, "DELETE", "/api/v1/session", hdr, NULL, 200);
    expect(f->hl.port, "GET", "/api/v1/inbox", hc, NULL, 401);
    http_clear(&h);
}

/* Issue 12: a referral lacking required fields is refused with the
 * library's sentence and every missing field named; nobody sends to itself;
 * the directory says whom the role matrix lets this member send each kind;
 * the urgency comes from the payload; a completed receipt carries an outcome
 * code (free text refused) and its words go in a note sealed to the sender,
 * which the receipt names and the sender can open. */
static void test_rules_and_receipt_note(void **state)
{
    struct fixture *f = *state;
    char hc[128], hcsrf[65], pc[128], pcsrf[65], hdr[256], path[128];
    assert_int_equal(login(f->hl.port, "lan", PASSWORD, hc, hcsrf), 200);
    assert_int_equal(login(f->po.port, "minh", PASSWORD, pc, pcsrf), 200);
    snprintf(hdr, sizeof hdr, "%sX-CSRF-Token: %s\r\n", hc, hcsrf);
    struct http h;

    /* required fields: all named, the first as the field */
    http(f->hl.port, "POST", "/api/v1/messages", NULL, hdr,
         "{\"kind\":\"referral\",\"to\":[\"" POLICE "\"],\"urgency\":\"standard\","
         "\"payload\":{\"referral\":{\"caseId\":\"HL-1\","
         "\"harmCategories\":[\"HARM_CATEGORY_SCAM\"]}}}",
         &h);
    assert_int_equal(h.status, 400);
    assert_non_null(strstr(json_string_value(json_object_get(h.json, "message")),
                           "the referral lacks legalBasis.kind, summary"));
    assert_string_equal(json_string_value(json_object_get(h.json, "field")),
                        "payload.referral.legalBasis.kind");
    json_t *fields = json_object_get(h.json, "fields");
    assert_int_equal(json_array_size(fields), 2);
    assert_string_equal(json_string_value(json_array_get(fields, 1)), "payload.referral.summary");
    http_clear(&h);

    /* a referral to oneself is refused, naming the recipients */
    const char *body_self =
        "{\"kind\":\"referral\",\"to\":[\"" HOTLINE "\"],\"urgency\":\"standard\","
        "\"payload\":{\"referral\":{\"caseId\":\"HL-2\",\"summary\":\"s\","
        "\"harmCategories\":[\"HARM_CATEGORY_SCAM\"],"
        "\"legalBasis\":{\"kind\":\"LEGAL_BASIS_KIND_VITAL_INTEREST\"}}}}";
    http(f->hl.port, "POST", "/api/v1/messages", NULL, hdr, body_self, &h);
    assert_int_equal(h.status, 403);
    assert_string_equal(json_string_value(json_object_get(h.json, "field")), "to");
    http_clear(&h);

    /* the directory: responders may get referrals and notes, never a
     * takedown request (no platform role); itself and the broker nothing */
    http(f->hl.port, "GET", "/api/v1/directory", NULL, hc, NULL, &h);
    assert_int_equal(h.status, 200);
    json_t *ms = json_object_get(h.json, "members");
    size_t checked = 0;
    for (size_t i = 0; i < json_array_size(ms); i++) {
        json_t *m = json_array_get(ms, i), *may = json_object_get(m, "may_send");
        const char *mid = json_string_value(json_object_get(m, "id"));
        char *kinds = json_dumps(may, JSON_COMPACT);
        if (strcmp(mid, POLICE) == 0 || strcmp(mid, "vn.molisa.hanoi") == 0) {
            assert_non_null(strstr(kinds, "\"referral\""));
            assert_non_null(strstr(kinds, "\"status\""));
            assert_null(strstr(kinds, "\"takedown-request\""));
            checked++;
        } else {
            assert_int_equal(json_array_size(may), 0); /* itself, the broker */
        }
        free(kinds);
    }
    assert_true(checked >= 1);
    http_clear(&h);

    /* no urgency chosen: the header takes the payload's */
    http(f->hl.port, "POST", "/api/v1/messages", NULL, hdr,
         "{\"kind\":\"referral\",\"to\":[\"" POLICE "\"],"
         "\"payload\":{\"referral\":{\"caseId\":\"HL-3\",\"summary\":\"s\","
         "\"urgency\":\"URGENCY_INFO\",\"harmCategories\":[\"HARM_CATEGORY_SCAM\"],"
         "\"legalBasis\":{\"kind\":\"LEGAL_BASIS_KIND_VITAL_INTEREST\"}}}}",
         &h);
    assert_int_equal(h.status, 200);
    char id[33];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(h.json, "id")));
    http_clear(&h);
    snprintf(path, sizeof path, "/api/v1/messages/%s/status", id);
    http(f->hl.port, "GET", path, NULL, hc, NULL, &h);
    assert_string_equal(json_string_value(json_object_get(h.json, "urgency")), "info");
    http_clear(&h);

    /* completing: a free-text outcome is refused, a code with a note works */
    snprintf(hdr, sizeof hdr, "%sX-CSRF-Token: %s\r\n", pc, pcsrf);
    snprintf(path, sizeof path, "/api/v1/messages/%s/receipts", id);
    http(f->po.port, "POST", path, NULL, hdr,
         "{\"status\":\"completed\",\"outcome\":\"child placed with relatives\"}", &h);
    assert_int_equal(h.status, 400);
    assert_string_equal(json_string_value(json_object_get(h.json, "field")), "outcome");
    http_clear(&h);
    http(f->po.port, "POST", path, NULL, hdr, "{\"status\":\"delivered\",\"note\":\"x\"}", &h);
    assert_int_equal(h.status, 400);
    assert_string_equal(json_string_value(json_object_get(h.json, "field")), "note");
    http_clear(&h);
    expect(f->po.port, "POST", path, hdr, "{\"status\":\"accepted\"}", 200);
    http(f->po.port, "POST", path, NULL, hdr,
         "{\"status\":\"completed\",\"outcome\":\"resolved\","
         "\"note\":\"Trẻ đã được đưa về ở với người thân.\"}",
         &h);
    assert_int_equal(h.status, 200);
    assert_string_equal(json_string_value(json_object_get(h.json, "outcome")), "resolved");
    char note_id[33];
    snprintf(note_id, sizeof note_id, "%s", json_string_value(json_object_get(h.json, "note_id")));
    assert_int_equal(strlen(note_id), 32);
    http_clear(&h);

    /* the hotline sees the receipt's code and note id, and opens the note */
    snprintf(path, sizeof path, "/api/v1/messages/%s/status", id);
    http(f->hl.port, "GET", path, NULL, hc, NULL, &h);
    json_t *steps =
        json_object_get(json_array_get(json_object_get(h.json, "recipients"), 0), "steps");
    json_t *receipt = json_object_get(json_array_get(steps, json_array_size(steps) - 1), "receipt");
    assert_true(json_is_true(json_object_get(receipt, "verified")));
    assert_string_equal(json_string_value(json_object_get(receipt, "outcome")), "resolved");
    assert_string_equal(json_string_value(json_object_get(receipt, "note_id")), note_id);
    http_clear(&h);
    snprintf(path, sizeof path, "/api/v1/messages/%s", note_id);
    http(f->hl.port, "GET", path, NULL, hc, NULL, &h);
    assert_int_equal(h.status, 200);
    json_t *st = json_object_get(json_object_get(h.json, "payload"), "status");
    assert_string_equal(json_string_value(json_object_get(st, "caseId")), "HL-3");
    assert_string_equal(json_string_value(json_object_get(st, "status")), "CASE_STATUS_CLOSED");
    assert_string_equal(json_string_value(json_object_get(st, "outcome")), "resolved");
    assert_string_equal(json_string_value(json_object_get(st, "note")),
                        "Trẻ đã được đưa về ở với người thân.");
    assert_string_equal(json_string_value(json_object_get(h.json, "in_reply_to")), id);
    http_clear(&h);

    /* forwarded receipt rows are settled once the inbox shows them: the
     * broker lists them fetched afterwards */
    http(f->hl.port, "GET", "/api/v1/inbox?kind=receipt&state=queued", NULL, hc, NULL, &h);
    assert_int_equal(h.status, 200);
    assert_true(json_integer_value(json_object_get(h.json, "total")) >= 2);
    http_clear(&h);
    http(f->hl.port, "GET", "/api/v1/inbox?kind=receipt&state=queued", NULL, hc, NULL, &h);
    assert_int_equal(json_integer_value(json_object_get(h.json, "total")), 0);
    http_clear(&h);
}

/* A disabled account loses its live session at once. */
static void test_disable_user(void **state)
{
    struct fixture *f = *state;
    char cookie[128], csrf[65];
    const char *add[] = {casenet_bin(), "console",    "user",   "add",      "tam",
                         "--role",      "caseworker", "--home", f->hl.home, NULL};
    assert_int_equal(run(PASSWORD "\n", add), 0);
    assert_int_equal(login(f->hl.port, "tam", PASSWORD, cookie, csrf), 200);
    expect(f->hl.port, "GET", "/api/v1/directory", cookie, NULL, 200);
    const char *dis[] = {casenet_bin(), "console", "user",     "disable",
                         "tam",         "--home",  f->hl.home, NULL};
    assert_int_equal(run(NULL, dis), 0);
    expect(f->hl.port, "GET", "/api/v1/directory", cookie, NULL, 401);
    assert_int_equal(login(f->hl.port, "tam", PASSWORD, cookie, csrf), 401);
}

/* A machine token: a bearer header instead of a cookie, no CSRF token; a
 * wrong token is refused; a viewer token may not send. */
static void test_token(void **state)
{
    struct fixture *f = *state;
    char out[600], cmd[1400], token[80] = "", hdr[160];
    snprintf(out, sizeof out, "%s.token", f->hl.home);
    snprintf(cmd, sizeof cmd,
             "'%s' console token add case-system --role caseworker --home '%s' > '%s'",
             casenet_bin(), f->hl.home, out);
    assert_int_equal(system(cmd), 0);
    FILE *fp = fopen(out, "r");
    assert_non_null(fp);
    assert_non_null(fgets(token, sizeof token, fp));
    fclose(fp);
    token[strcspn(token, "\n")] = '\0';
    assert_int_equal(strlen(token), 64);
    struct http h;
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", token);
    expect(f->hl.port, "GET", "/api/v1/inbox", hdr, NULL, 200);
    http(f->hl.port, "POST", "/api/v1/messages", NULL, hdr,
         "{\"kind\":\"referral\",\"to\":[\"" POLICE "\"],\"urgency\":\"standard\","
         "\"payload\":{\"referral\":{\"caseId\":\"CS-1\",\"summary\":\"from the case system\","
         "\"harmCategories\":[\"HARM_CATEGORY_SCAM\"],\"legalBasis\":{\"kind\":"
         "\"LEGAL_BASIS_KIND_STATUTORY_DUTY\"}}}}",
         &h);
    assert_int_equal(h.status, 200);
    http_clear(&h);
    token[0] = token[0] == 'a' ? 'b' : 'a';
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", token);
    expect(f->hl.port, "GET", "/api/v1/inbox", hdr, NULL, 401);
}

/* A console takes a newer directory from the broker (here at its start,
 * else every 10 minutes), stores it in the home and serves it. */
static void test_directory_refresh(void **state)
{
    struct fixture *f = *state;
    casenet_keys *k = NULL;
    assert_int_equal(casenet_keys_generate("vn.molisa.hanoi", f->tn->net->now_ms, &k), 0);
    tl_net_add(f->tn->net, "vn.molisa.hanoi:responder:social-services", k);
    uint64_t want = casenet_directory_version(f->tn->net->dir);
    tn_write_directory(f->tn);
    tn_signal(f->tn, SIGHUP);
    /* wait until the broker serves it */
    casenet_client *cl = NULL;
    casenet_client_opts o = {.endpoint = f->tn->endpoint, .timeout_ms = 5000};
    assert_int_equal(casenet_client_connect(tn_keys(f->tn, POLICE), f->tn->net->dir, &o, &cl), 0);
    bool served = false;
    for (int i = 0; i < 100 && !served; i++) {
        casenet_buf b = {0};
        assert_int_equal(casenet_client_get_directory(cl, &b), 0);
        served = b.len == f->tn->net->signed_dir.len &&
                 memcmp(b.data, f->tn->net->signed_dir.data, b.len) == 0;
        casenet_buf_free(&b);
        if (!served) {
            nap();
        }
    }
    casenet_client_free(cl);
    assert_true(served);

    stop_console(&f->hl);
    start_console(&f->hl);
    char cookie[128], csrf[65];
    assert_int_equal(login(f->hl.port, "lan", PASSWORD, cookie, csrf), 200);
    uint64_t got = 0;
    for (int i = 0; i < 100 && got != want; i++) {
        struct http h;
        http(f->hl.port, "GET", "/api/v1/directory", NULL, cookie, NULL, &h);
        assert_int_equal(h.status, 200);
        got = (uint64_t)json_integer_value(json_object_get(h.json, "version"));
        http_clear(&h);
        if (got != want) {
            nap();
        }
    }
    assert_int_equal(got, want);
    /* and the home keeps it */
    char state_path[600];
    snprintf(state_path, sizeof state_path, "%s/state", f->hl.home);
    size_t len = 0;
    uint8_t *st = tl_read_file(state_path, &len);
    char line[64];
    snprintf(line, sizeof line, "directory_version=%llu", (unsigned long long)want);
    assert_non_null(memmem(st, len, line, strlen(line)));
    free(st);
    casenet_keys_free(k);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(casenet_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_and_host),  cmocka_unit_test(test_login_and_rate_limit),
        cmocka_unit_test(test_csrf_and_roles),    cmocka_unit_test(test_referral_round_trip),
        cmocka_unit_test(test_disable_user),      cmocka_unit_test(test_token),
        cmocka_unit_test(test_directory_refresh), cmocka_unit_test(test_rules_and_receipt_note),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
