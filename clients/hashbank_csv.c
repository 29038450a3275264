/* hashbank_csv.c - the text forms of the hash bank (see hashbank.h): signal
 * types, categories, CSV rows and TYPE:VALUE arguments. Values are checked
 * by the protocol's own rule (casenet_payload_check on a one-entry share). */
#include "hashbank.h"

#include "casenet.pb-c.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const type_names[] = {NULL, "md5", "sha1", "sha256", "pdq"};

int hashbank_type_parse(const char *text, int *type, const char **vendor)
{
    *vendor = NULL;
    for (int t = 1; t <= CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_PDQ; t++) {
        if (strcasecmp(text, type_names[t]) == 0) {
            *type = t;
            return CASENET_OK;
        }
    }
    if (strncmp(text, "vendor:", 7) == 0 && text[7]) {
        *type = CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_VENDOR;
        *vendor = text + 7;
        return CASENET_OK;
    }
    return CASENET_EINVAL;
}

const char *hashbank_type_text(int type, const char *vendor, char buf[HASHBANK_TYPE_MAX])
{
    if (type >= 1 && type <= CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_PDQ)
        snprintf(buf, HASHBANK_TYPE_MAX, "%s", type_names[type]);
    else
        snprintf(buf, HASHBANK_TYPE_MAX, "vendor:%s", vendor ? vendor : "");
    return buf;
}

static const struct {
    const char *name;
    int category;
} categories[] = {
    {"baseline", CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_BASELINE},
    {"nationally-illegal", CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_NATIONALLY_ILLEGAL},
    {"not-illegal", CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_NOT_ILLEGAL},
    {"not-illegal/under-review", CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_NOT_ILLEGAL},
    {"under-review", CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_NOT_ILLEGAL},
};

int hashbank_category_parse(const char *text, int *category)
{
    for (size_t i = 0; i < sizeof categories / sizeof categories[0]; i++) {
        if (strcmp(text, categories[i].name) == 0) {
            *category = categories[i].category;
            return CASENET_OK;
        }
    }
    return CASENET_EINVAL;
}

const char *hashbank_category_name(int category)
{
    for (size_t i = 0; i < sizeof categories / sizeof categories[0]; i++) {
        if (categories[i].category == category)
            return categories[i].name;
    }
    return "unknown";
}

/* Checks row's signal with the protocol's rule, the reason into err. */
static int check_signal(struct hashbank_row *row, char *err, size_t errlen)
{
    Casenet__V1__HashSignal sig = CASENET__V1__HASH_SIGNAL__INIT;
    Casenet__V1__HashEntry e = CASENET__V1__HASH_ENTRY__INIT;
    Casenet__V1__HashEntry *ep = &e;
    Casenet__V1__HashShare hs = CASENET__V1__HASH_SHARE__INIT;
    Casenet__V1__Payload p = CASENET__V1__PAYLOAD__INIT;
    sig.signal_type = (Casenet__V1__HashSignalType)row->type;
    sig.vendor_type = row->vendor;
    sig.value = row->value;
    e.signal = &sig;
    e.category = CASENET__V1__HASH_CATEGORY__HASH_CATEGORY_BASELINE;
    e.first_seen_ms = 1;
    hs.n_entries = 1;
    hs.entries = &ep;
    p.body_case = CASENET__V1__PAYLOAD__BODY_HASH_SHARE;
    p.hash_share = &hs;
    uint8_t buf[HASHBANK_TYPE_MAX + HASHBANK_VALUE_MAX + 64];
    size_t n = casenet__v1__payload__pack(&p, buf);
    char why[256];
    if (casenet_payload_check(buf, n, CASENET_KIND_HASH_SHARE, 0, why, sizeof why) == CASENET_OK)
        return CASENET_OK;
    const char *colon = strstr(why, "refused: ");
    snprintf(err, errlen, "%s", colon ? colon + 9 : why);
    return CASENET_EINVAL;
}

/* Fills row's type and value from type_text and value (lowercasing a hex
 * type's value) and checks them. */
static int fill(struct hashbank_row *row, const char *type_text, size_t tlen, const char *value,
                size_t vlen, char *err, size_t errlen)
{
    char type[HASHBANK_TYPE_MAX];
    if (tlen >= sizeof type || vlen >= sizeof row->value) {
        snprintf(err, errlen, "%s too long",
                 tlen >= sizeof type ? "the signal type is" : "the value is");
        return CASENET_EINVAL;
    }
    memcpy(type, type_text, tlen);
    type[tlen] = '\0';
    const char *vendor = NULL;
    if (hashbank_type_parse(type, &row->type, &vendor) != CASENET_OK) {
        snprintf(err, errlen, "unknown signal type '%.*s': md5, sha1, sha256, pdq or vendor:NAME",
                 (int)tlen, type_text);
        return CASENET_EINVAL;
    }
    snprintf(row->vendor, sizeof row->vendor, "%s", vendor ? vendor : "");
    memcpy(row->value, value, vlen);
    row->value[vlen] = '\0';
    if (row->type != CASENET__V1__HASH_SIGNAL_TYPE__HASH_SIGNAL_TYPE_VENDOR) {
        for (size_t i = 0; i < vlen; i++)
            row->value[i] = (char)tolower((unsigned char)row->value[i]);
    }
    return check_signal(row, err, errlen);
}

int hashbank_csv_row(const char *line, size_t len, struct hashbank_row *row, char *err,
                     size_t errlen)
{
    memset(row, 0, sizeof *row);
    if (len && line[len - 1] == '\r')
        len--;
    const char *c1 = memchr(line, ',', len);
    if (!c1) {
        snprintf(err, errlen, "expected signal_type,signal_value,category");
        return CASENET_EINVAL;
    }
    const char *v = c1 + 1, *end = line + len;
    const char *c2 = memchr(v, ',', (size_t)(end - v));
    const char *vend = c2 ? c2 : end;
    int rc = fill(row, line, (size_t)(c1 - line), v, (size_t)(vend - v), err, errlen);
    if (rc != CASENET_OK || !c2)
        return rc;
    size_t clen = (size_t)(end - c2 - 1);
    char cat[32];
    if (clen == 0)
        return CASENET_OK;
    if (clen >= sizeof cat || memchr(c2 + 1, ',', clen)) {
        snprintf(err, errlen, "expected 3 fields: signal_type,signal_value,category");
        return CASENET_EINVAL;
    }
    memcpy(cat, c2 + 1, clen);
    cat[clen] = '\0';
    if (hashbank_category_parse(cat, &row->category) != CASENET_OK) {
        snprintf(err, errlen, "unknown category '%s': baseline, nationally-illegal or not-illegal",
                 cat);
        return CASENET_EINVAL;
    }
    return CASENET_OK;
}

bool hashbank_csv_header(const char *line, size_t len)
{
    static const char h[] = "signal_type,signal_value";
    if (len && line[len - 1] == '\r')
        len--;
    return len >= sizeof h - 1 && memcmp(line, h, sizeof h - 1) == 0;
}

int hashbank_signal_arg(const char *arg, struct hashbank_row *row, char *err, size_t errlen)
{
    memset(row, 0, sizeof *row);
    /* vendor:NAME:VALUE: NAME holds no colon, VALUE may. */
    const char *from = strncmp(arg, "vendor:", 7) == 0 ? arg + 7 : arg;
    const char *colon = strchr(from, ':');
    if (!colon) {
        snprintf(err, errlen, "expected TYPE:VALUE (e.g. sha256:e3b0...), not '%s'", arg);
        return CASENET_EINVAL;
    }
    return fill(row, arg, (size_t)(colon - arg), colon + 1, strlen(colon + 1), err, errlen);
}
