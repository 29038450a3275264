/* cmd_report.c - `casenet report --month YYYY-MM`: a coordinator's monthly
 * figures, computed by the same function as the console's report page
 * (console_stats.c) from the home's verified audit cache (DIR/coord.db),
 * which it first brings up to the broker's latest signed head. */
#include "cli.h"
#include "commands.h"
#include "console_coord.h"
#include "home.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char report_usage[] =
    "usage: casenet report --month YYYY-MM [--csv|--json] [--public] [--offline]\n"
    "                      [--home DIR] [--broker ENDPOINT]\n"
    "\n"
    "A coordinator's figures for one month (UTC): messages per day and week by\n"
    "kind and urgency, who sends to whom, times to delivered and to accepted or\n"
    "declined per agency and urgency (p50, p90, share within the policy\n"
    "deadline), declines by reason, takedown requests and their outcomes within\n"
    "24 hours. Actual messages only; exercise and test are counted apart.\n"
    "The figures come from the broker's audit log as verified here: the log is\n"
    "pulled into DIR/coord.db, every signed head and the events under it\n"
    "checked with the directory's broker key, and the output names the signed\n"
    "head (size, root hash) they were computed from. A log that does not verify\n"
    "gives no figures (exit 3). The same figures as the console's report page.\n"
    "\n"
    "options:\n"
    "  -m, --month YYYY-MM   the month\n"
    "  -c, --csv             CSV (section,key1,key2,key3,metric,value)\n"
    "  -j, --json            JSON\n"
    "  -p, --public          for publication: counts 1-4 shown as \"<5\" (and the\n"
    "                        times of such cells left out); never an id of a\n"
    "                        message or a case (no figure carries one)\n"
    "  -o, --offline         use the cache as it is, without asking the broker\n"
    "  -H, --home DIR        the coordinator's home\n"
    "  -b, --broker ENDPOINT override the home's broker endpoint\n"
    "  -h, --help            this text\n"
    "\n"
    "example:\n"
    "  casenet report --month 2026-11 --csv --public > 2026-11.csv\n";

/* Prints the figures readably. */
static void print_text(const json_t *fig, const char *month)
{
    const json_t *h = json_object_get(fig, "head");
    printf("casenet report %s (UTC)%s\n", month,
           json_is_true(json_object_get(fig, "public")) ? ", for publication" : "");
    printf("computed from the verified audit log up to signed head size %" JSON_INTEGER_FORMAT
           ", root %s\n\n",
           json_integer_value(json_object_get(h, "size")),
           json_string_value(json_object_get(h, "root")));
    char *csv = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&csv, &len);
    if (!m)
        return;
    int rc = coord_figures_csv(fig, m);
    fclose(m);
    if (rc != CASENET_OK) {
        free(csv);
        return;
    }
    /* the CSV rows, sections apart, commas as spaces */
    char last[32] = "";
    for (char *line = strtok(csv, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "section,", 8) == 0 || strncmp(line, "head,", 5) == 0 ||
            strncmp(line, "range,", 6) == 0)
            continue;
        size_t n = strcspn(line, ",");
        if (strlen(last) != n || strncmp(last, line, n) != 0) {
            snprintf(last, sizeof last, "%.*s", (int)n, line);
            printf("%s%s\n", strcmp(last, "totals") ? "\n" : "", last);
        }
        printf(" ");
        for (char *p = line + n; *p; p++) {
            if (*p == ',' && p[1] == ',')
                continue;
            putchar(*p == ',' ? ' ' : *p);
        }
        putchar('\n');
    }
    free(csv);
}

/* Brings the cache up to the broker's head. Returns an exit code. */
static int report_sync(struct home *h, coord_cache *cc, const char *broker)
{
    casenet_client *cl = NULL;
    int ex = net_connect(h, broker, 30000, &cl);
    if (ex != CLI_OK)
        return ex;
    char err[COORD_ERR_MAX];
    int rc = coord_cache_sync(cc, cl, h->dir, false, NULL, NULL, err);
    if (rc == CASENET_EFORBIDDEN)
        ex = cli_fail(CLI_BROKER, rc, "run it in a coordinator's home",
                      "only a coordinator may read the whole audit log");
    else if (rc != CASENET_OK && strncmp(err, "broker:", 7) == 0)
        ex = net_fail(cl, rc, "pulling the audit log");
    else if (rc != CASENET_OK)
        ex = cli_fail(CLI_VERIFY, rc, "the figures cannot be trusted: keep the cache as evidence",
                      "the audit log does not verify: %s", cli_safe(err));
    casenet_client_free(cl);
    return ex;
}

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"month", required_argument, NULL, 'm'},
        {"csv", no_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"public", no_argument, NULL, 'p'},
        {"offline", no_argument, NULL, 'o'},
        {"home", required_argument, NULL, 'H'},
        {"broker", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *month = NULL, *home = NULL, *broker = NULL;
    bool csv = false, json = false, public = false, offline = false;
    int c;
    while ((c = cli_getopt(argc, argv, "m:cjpoH:b:h", opts)) != -1) {
        switch (c) {
        case 'm':
            month = optarg;
            break;
        case 'c':
            csv = true;
            break;
        case 'j':
            json = true;
            break;
        case 'p':
            public
            = true;
            break;
        case 'o':
            offline = true;
            break;
        case 'H':
            home = optarg;
            break;
        case 'b':
            broker = optarg;
            break;
        case 'h':
            return cli_help(report_usage);
        default:
            return CLI_EUSAGE;
        }
    }
    int64_t from = 0, to = 0;
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!coord_month(month, &from, &to))
        return cli_usage_error("--month takes a month as YYYY-MM, e.g. 2026-11");
    if (csv && json)
        return cli_usage_error("--csv and --json: choose one");
    char *path = home_path(home);
    struct home *h = NULL;
    coord_cache *cc = NULL;
    json_t *fig = NULL;
    int ex = path ? home_open(path, &h) : CLI_EFAIL;
    if (ex == CLI_OK && coord_cache_open(path, &cc) != CASENET_OK)
        ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot open the audit cache");
    casenet_member self;
    if (ex == CLI_OK && (casenet_directory_find(h->dir, h->member, &self) != CASENET_OK ||
                         !casenet_member_has_role(&self, "coordinator")))
        ex = cli_fail(CLI_BROKER, CASENET_EFORBIDDEN, "run it in a coordinator's home",
                      "only a coordinator may read the whole audit log");
    if (ex == CLI_OK && !offline)
        ex = report_sync(h, cc, broker);
    char err[COORD_ERR_MAX];
    if (ex == CLI_OK && coord_cache_failure(cc, err, NULL))
        ex = cli_fail(CLI_VERIFY, CASENET_EBADSIG, "remove coord.db to start again from scratch",
                      "the audit log did not verify: %s", cli_safe(err));
    if (ex == CLI_OK) {
        struct coord_head head;
        int64_t at;
        coord_cache_head(cc, &head, &at);
        fig = coord_figures(coord_cache_db(cc), from, to, public, &head);
        if (!fig)
            ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "cannot compute the figures");
    }
    if (ex == CLI_OK) {
        if (csv)
            ex = coord_figures_csv(fig, stdout) == CASENET_OK ? CLI_OK : CLI_EIO;
        else if (json)
            ex = json_dumpf(fig, stdout, JSON_INDENT(1)) == 0 && puts("") >= 0 ? CLI_OK : CLI_EIO;
        else
            print_text(fig, month);
        if (fflush(stdout) != 0)
            ex = cli_fail(CLI_LOCAL, CASENET_EIO, NULL, "stdout");
    }
    json_decref(fig);
    coord_cache_close(cc);
    home_free(h);
    free(path);
    return ex;
}
