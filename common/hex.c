/* hex.c - the one hex codec of casenet (see hex.h). */
#include "hex.h"

#include <string.h>

void cn_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int cn_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cn_unhex(const char *hex, uint8_t *out, size_t len)
{
    if (!hex || strlen(hex) != 2 * len)
        return CASENET_EINVAL;
    for (size_t i = 0; i < 2 * len; i++) {
        if (cn_hex_digit(hex[i]) < 0)
            return CASENET_EINVAL;
    }
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(cn_hex_digit(hex[2 * i]) << 4 | cn_hex_digit(hex[2 * i + 1]));
    return CASENET_OK;
}
