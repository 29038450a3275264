/*
 * config.h - casenetd's configuration as one table: for every option its
 * INI section and key, command-line flag, type, default, bounds and help.
 * The table drives the INI parser (--config FILE), the flags, `--help`,
 * `--check-config`'s listing of the effective values and `--help-config`:
 * the markdown reference docs/configuration.md and the scdoc the man pages
 * casenetd(8) and casenetd.conf(5) are built from (config_doc.c).
 *
 * Adding an option is a field in struct broker_config (broker.h) and one
 * row in config.c's table; nothing else parses or documents it.
 *
 * "Not set" has one meaning: an option's source is CONFIG_UNSET (a string
 * option is then NULL). config_finish gives every unset option with a
 * default its default, so after it only optional options without one (e.g.
 * policy) are unset.
 */
#ifndef BROKER_CONFIG_H
#define BROKER_CONFIG_H

#include "broker.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum config_type {
    CONFIG_STRING,   /* any text */
    CONFIG_ENDPOINT, /* a ZeroMQ endpoint to bind: tcp://HOST:PORT or ipc://PATH */
    CONFIG_PATH,     /* a file or directory name, not empty */
    CONFIG_U32,      /* a whole number within [min, max] */
    CONFIG_U64,
    CONFIG_DURATION, /* 90, 90s, 15m, 12h, 2d: stored as seconds (uint32_t) */
    CONFIG_SIZE,     /* 1048576, 64KB, 64MB, 1GB (binary units): stored in units of
                      * `unit` bytes (uint32_t) and a whole number of them */
    CONFIG_RATE,     /* N/min, N/s or a bare N (per second): stored per minute (uint32_t) */
    CONFIG_PERCENT,  /* 10 or 10%: uint32_t */
    CONFIG_BOOL,     /* true/false, yes/no, on/off, 1/0: bool */
};

/* Where an option's value came from (--check-config prints it). */
enum config_source {
    CONFIG_UNSET,
    CONFIG_DEFAULT,
    CONFIG_FILE,
    CONFIG_FLAG,
};

struct config_option {
    const char *section; /* INI section, e.g. "limits" */
    const char *key;     /* INI key, e.g. "batch_max" */
    const char *flag;    /* long option without "--", e.g. "batch-max" */
    const char *arg;     /* the value's name in --help, e.g. "N" */
    enum config_type type;
    size_t offset;       /* of the value in struct broker_config */
    const char *def;     /* the default as text (parsed like a value), or NULL */
    const char *def_doc; /* with def NULL: how config_finish derives one, or NULL
                          * (no default: unset, or required) */
    uint64_t min, max;   /* bounds, in the stored unit (numeric types) */
    uint32_t unit;       /* CONFIG_SIZE: bytes per stored unit (1, 1 MiB) */
    bool required;
    const char *help;
};

#define CONFIG_OPTIONS_MAX 64

/* The values and, per option (indexed like config_options), where each
 * came from. */
struct config {
    struct broker_config values;
    enum config_source source[CONFIG_OPTIONS_MAX];
    unsigned file_line[CONFIG_OPTIONS_MAX]; /* its line in the file, 0 = none */
};

/* The table: config_options[0 .. config_count()). */
extern const struct config_option config_options[];
size_t config_count(void);
/* The option of INI section and key, or NULL. */
const struct config_option *config_find(const char *section, const char *key);

/* Zeroes c: every option unset. */
void config_init(struct config *c);
/* Releases the strings c holds and zeroes it. Accepts NULL. */
void config_free(struct config *c);

/* Parses value for option i (an index into config_options) and stores it
 * with source src, replacing an earlier value. CASENET_EINVAL with a
 * message naming the option, the value and what is allowed in err;
 * CASENET_ENOMEM. */
CASENET_NODISCARD int config_set(struct config *c, size_t i, const char *value,
                                 enum config_source src, char *err, size_t errlen);

/* Checks text as a value of option o (a row of the table or any other)
 * and gives its number in *n (0 for the string types). CASENET_EINVAL with
 * the message config_set would give in err. */
CASENET_NODISCARD int config_parse_value(const struct config_option *o, const char *text,
                                         uint64_t *n, char *err, size_t errlen);

/* Reads an INI file (or text, named origin in messages) over c: a value
 * from a flag (CONFIG_FLAG) is kept, though the file's is still checked.
 * CASENET_EIO (unreadable) or CASENET_EINVAL (unknown section or key, a key
 * given twice, a bad or out-of-bounds value, a syntax error) with
 * "FILE:LINE: what" in err; c keeps what was set before the error. */
CASENET_NODISCARD int config_load_file(struct config *c, const char *path, char *err,
                                       size_t errlen);
CASENET_NODISCARD int config_load_string(struct config *c, const char *text, const char *origin,
                                         char *err, size_t errlen);

/* Fills every unset option that has a default (derived ones too: the store
 * from the data directory, verify_threads from the cores, a burst from its
 * rate). CASENET_EINVAL when a required option is missing, with
 * "--FLAG is required ..." in err; CASENET_ENOMEM. */
CASENET_NODISCARD int config_finish(struct config *c, char *err, size_t errlen);

/* Writes option i's value of c as text that parses back ("(not set)" when
 * unset) into out[cap]. */
void config_format(const struct config *c, size_t i, char *out, size_t cap);
/* Prints every option's effective value and its source, one a line
 * (--check-config). */
void config_print_effective(const struct config *c, FILE *f);
/* True for the types whose value is text (string, endpoint, path): no
 * bounds apply. */
bool config_is_text(enum config_type t);
/* Writes what option o allows ("a whole number from 1 to 65536") into
 * out[cap], for errors and the references. */
void config_describe_range(const struct config_option *o, char *out, size_t cap);

/* config_doc.c: */
/* Prints the options part of `casenetd --help`: every flag with its
 * argument, help, INI key, default and bounds. */
void config_print_help(FILE *f);
/* The formats of the configuration reference, one generator for all
 * (casenetd --help-config[=FORMAT]). */
enum config_doc {
    CONFIG_DOC_MARKDOWN,    /* "markdown": docs/configuration.md */
    CONFIG_DOC_SCDOC,       /* "scdoc": casenetd.conf(5)'s keys, values, policy file */
    CONFIG_DOC_SCDOC_FLAGS, /* "scdoc-flags": casenetd(8)'s options */
};
/* The format called name into *out (NULL: markdown). CASENET_EINVAL for
 * another name. */
CASENET_NODISCARD int config_doc_parse(const char *name, enum config_doc *out);
/* Prints the configuration reference in format fmt. */
void config_print_reference(FILE *f, enum config_doc fmt);

#endif
