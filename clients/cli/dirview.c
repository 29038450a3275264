/* dirview.c - display and expiry-tolerant verification of a signed directory
 * for the CLI. Display reads the protobuf directly, so an unverified file can
 * be inspected; it never decides trust. */
#include "dirview.h"

#include "casenet.pb-c.h"
#include "cli.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Unpacks the body of a SignedDirectory; caller frees both with
 * protobuf_c_message_free_unpacked. */
static int unpack(const uint8_t *bytes, size_t len, Casenet__V1__SignedDirectory **sd_out,
                  Casenet__V1__DirectoryBody **body_out)
{
    Casenet__V1__SignedDirectory *sd = casenet__v1__signed_directory__unpack(NULL, len, bytes);
    if (!sd)
        return CASENET_EBADREQ;
    Casenet__V1__DirectoryBody *body =
        casenet__v1__directory_body__unpack(NULL, sd->body.len, sd->body.data);
    if (!body) {
        casenet__v1__signed_directory__free_unpacked(sd, NULL);
        return CASENET_EBADREQ;
    }
    *sd_out = sd;
    *body_out = body;
    return CASENET_OK;
}

int dirview_expires_at(const uint8_t *bytes, size_t len, int64_t *out)
{
    Casenet__V1__SignedDirectory *sd = NULL;
    Casenet__V1__DirectoryBody *body = NULL;
    int rc = unpack(bytes, len, &sd, &body);
    if (rc != CASENET_OK)
        return rc;
    *out = body->expires_at_ms;
    casenet__v1__directory_body__free_unpacked(body, NULL);
    casenet__v1__signed_directory__free_unpacked(sd, NULL);
    return CASENET_OK;
}

int dirview_verify(const uint8_t *bytes, size_t len, const uint8_t authority_pk[32],
                   uint64_t min_version, casenet_directory **out, bool *expired)
{
    int64_t now = cn_now_ms();
    *expired = false;
    int rc = casenet_directory_parse(bytes, len, authority_pk, now, min_version, out);
    if (rc != CASENET_EEXPIRED)
        return rc;
    int64_t exp = 0;
    if (dirview_expires_at(bytes, len, &exp) != CASENET_OK || exp <= 0)
        return CASENET_EEXPIRED;
    rc = casenet_directory_parse(bytes, len, authority_pk, exp - 1, min_version, out);
    if (rc == CASENET_OK)
        *expired = true;
    return rc;
}

static const char *status_name(int s)
{
    switch (s) {
    case CASENET__V1__MEMBER_STATUS__MEMBER_STATUS_ACTIVE:
        return "active";
    case CASENET__V1__MEMBER_STATUS__MEMBER_STATUS_SUSPENDED:
        return "suspended";
    case CASENET__V1__MEMBER_STATUS__MEMBER_STATUS_REVOKED:
        return "revoked";
    default:
        return "unspecified";
    }
}

static const char *key_use_name(int u)
{
    switch (u) {
    case CASENET__V1__KEY_USE__KEY_USE_SIGN:
        return "sign";
    case CASENET__V1__KEY_USE__KEY_USE_BOX:
        return "box";
    case CASENET__V1__KEY_USE__KEY_USE_CURVE:
        return "curve";
    default:
        return "unknown";
    }
}

static void print_list(const char *label, char **items, size_t n)
{
    printf("    %-8s", label);
    if (n == 0)
        printf("-");
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? ", " : "", cli_safe(items[i]));
    printf("\n");
}

static void print_text(const Casenet__V1__DirectoryBody *b, const char *verdict, bool expired)
{
    char issued[64], expires[64];
    cli_format_time(b->issued_at_ms, true, issued, sizeof issued);
    cli_format_time(b->expires_at_ms, true, expires, sizeof expires);
    printf("directory version %llu%s%s\n", (unsigned long long)b->version,
           b->network && b->network[0] ? " of network " : "", cli_safe(b->network));
    printf("  issued   %s\n  expires  %s%s\n", issued, expires, expired ? "  ** EXPIRED **" : "");
    printf("  %s\n", verdict);
    printf("  %zu member%s\n", b->n_members, b->n_members == 1 ? "" : "s");
    for (size_t i = 0; i < b->n_members; i++) {
        const Casenet__V1__Member *m = b->members[i];
        printf("\n  %s  (%s)\n", cli_safe(m->id),
               cli_safe(m->display_name && m->display_name[0] ? m->display_name : m->id));
        printf("    status  %s\n", status_name(m->status));
        print_list("roles", m->roles, m->n_roles);
        print_list("groups", m->groups, m->n_groups);
        for (size_t k = 0; k < m->n_keys; k++) {
            const Casenet__V1__PublicKey *pk = m->keys[k];
            char from[64], until[64];
            cli_format_time(pk->valid_from_ms, true, from, sizeof from);
            cli_format_time(pk->valid_until_ms, true, until, sizeof until);
            printf("    key     %-5s %s  valid %s .. %s\n", key_use_name(pk->use),
                   cli_safe(pk->key_id), from, until);
        }
    }
}

static json_t *str_array(char **items, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(items[i]));
    return a;
}

static int print_json(const Casenet__V1__DirectoryBody *b, const char *verdict, bool expired)
{
    char issued[40], expires[40];
    cli_format_iso(b->issued_at_ms, issued, sizeof issued);
    cli_format_iso(b->expires_at_ms, expires, sizeof expires);
    json_t *members = json_array();
    json_t *root =
        json_pack("{s:I, s:s, s:s, s:s, s:b, s:s, s:o}", "version", (json_int_t)b->version,
                  "network", b->network ? b->network : "", "issued_at", issued, "expires_at",
                  expires, "expired", expired, "signature", verdict, "members", members);
    if (!root)
        return CASENET_ENOMEM;
    for (size_t i = 0; i < b->n_members; i++) {
        const Casenet__V1__Member *m = b->members[i];
        json_t *keys = json_array();
        for (size_t k = 0; keys && k < m->n_keys; k++) {
            json_array_append_new(keys,
                                  json_pack("{s:s, s:s}", "use", key_use_name(m->keys[k]->use),
                                            "key_id", m->keys[k]->key_id));
        }
        json_array_append_new(members, json_pack("{s:s, s:s, s:o, s:o, s:s, s:o}", "id", m->id,
                                                 "name", m->display_name ? m->display_name : "",
                                                 "roles", str_array(m->roles, m->n_roles), "groups",
                                                 str_array(m->groups, m->n_groups), "status",
                                                 status_name(m->status), "keys",
                                                 keys ? keys : json_array()));
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return CASENET_ENOMEM;
    int rc = puts(text) < 0 ? CASENET_EIO : CASENET_OK;
    free(text);
    return rc;
}

int dirview_print(const uint8_t *bytes, size_t len, bool json, const char *verdict, bool expired)
{
    Casenet__V1__SignedDirectory *sd = NULL;
    Casenet__V1__DirectoryBody *body = NULL;
    int rc = unpack(bytes, len, &sd, &body);
    if (rc != CASENET_OK)
        return rc;
    if (json) {
        rc = print_json(body, verdict, expired);
    } else {
        print_text(body, verdict, expired);
        rc = fflush(stdout) == 0 ? CASENET_OK : CASENET_EIO;
    }
    casenet__v1__directory_body__free_unpacked(body, NULL);
    casenet__v1__signed_directory__free_unpacked(sd, NULL);
    return rc;
}
