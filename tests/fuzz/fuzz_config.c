/* fuzz_config.c - libFuzzer harness: casenetd's configuration reader
 * (broker/config.c) on a config file's text, then every option's value
 * parser on the input's first line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const char *err, size_t cap, const char *what)
{
    if (!memchr(err, 0, cap) || err[0] == '\0') {
        fprintf(stderr, "%s: an error without a terminated message\n", what);
        abort();
    }
}

/* Whatever a file sets, config_finish completes (the required options come
 * from flags) and every value it lists parses back to the same value. */
static void read_file(const char *text)
{
    static const char *const req[][2] = {{"data", "d"},
                                         {"listen", "tcp://127.0.0.1:7400"},
                                         {"key", "k"},
                                         {"directory", "dir"},
                                         {"authority", "a"}};
    struct config c;
    char err[400];
    config_init(&c);
    memset(err, 'x', sizeof err);
    if (config_load_string(&c, text, "fuzz.ini", err, sizeof err) != CASENET_OK) {
        check_message(err, sizeof err, "config_load_string");
        config_free(&c);
        return;
    }
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
        const struct config_option *o = config_find("broker", req[i][0]);
        if (config_set(&c, (size_t)(o - config_options), req[i][1], CONFIG_FLAG, err, sizeof err) !=
            CASENET_OK)
            abort();
    }
    if (config_finish(&c, err, sizeof err) != CASENET_OK) {
        fprintf(stderr, "config_finish failed with every required option: %s\n", err);
        abort();
    }
    for (size_t i = 0; i < config_count(); i++) {
        char text_value[512];
        uint64_t again = 0;
        if (c.source[i] == CONFIG_UNSET)
            continue;
        config_format(&c, i, text_value, sizeof text_value);
        if (config_parse_value(&config_options[i], text_value, &again, err, sizeof err) !=
            CASENET_OK) {
            fprintf(stderr, "%s: its own value '%s' does not parse: %s\n", config_options[i].key,
                    text_value, err);
            abort();
        }
    }
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull) {
        config_print_effective(&c, devnull);
        fclose(devnull);
    }
    config_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    read_file(text);
    /* The value parsers on the first line, for every option. */
    text[strcspn(text, "\n")] = '\0';
    for (size_t i = 0; i < config_count(); i++) {
        char err[400];
        uint64_t n = 0;
        memset(err, 'x', sizeof err);
        const struct config_option *o = &config_options[i];
        if (config_parse_value(o, text, &n, err, sizeof err) != CASENET_OK)
            check_message(err, sizeof err, o->key);
        else if (o->type != CONFIG_STRING && o->type != CONFIG_PATH && o->type != CONFIG_ENDPOINT &&
                 (n < o->min || n > o->max))
            abort(); /* accepted out of its bounds */
    }
    free(text);
    return 0;
}
