/* Internal to the config module: the value types of bdr.conf (numbers,
 * sizes, paths, addresses, schedules, rates, ...) and how each is parsed,
 * formatted and freed. config.c holds the key table and the file's
 * grammar; config_value.c knows what one value means. */
#ifndef BDR_DAEMON_CONFIG_VALUE_H
#define BDR_DAEMON_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"

#define KIB 1024ull
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The longest line read, besides indentation and comment: inih's buffer
 * (INI_MAX_LINE, 200) less its NUL, as read_line enforces. The dump keeps
 * its lines within it, so that it loads back. */
#define LINE_CHARS 199

/* parse stores into an empty (zeroed or freed) field, or leaves it as it
 * was and says why in why[n]; -ENOMEM is the only error that is not the
 * value's fault. The fields of an address are never empty: they start as
 * an inline address (bdr_config_address_init), and schedule, rate and capacity build
 * on what they hold. format writes "" for an unset optional value. */
struct bdr_config_type_ops {
	const char *label; /* in the summary line */
	bool repeat;       /* the key may be set more than once in a section */
	int (*parse)(const struct bdr_config_key *k, const char *s, void *field, char *why,
		     size_t n);
	void (*format)(const struct bdr_config_key *k, const void *field, char *buf, size_t n);
	void (*free)(void *field);
};

/* Indexed by enum bdr_config_type. */
extern const struct bdr_config_type_ops bdr_config_types[];

/* Longest formatted value: a full list of addresses, or a schedule. */
#define ADDRESSES_TEXT_MAX (BDR_CONFIG_MAX_ADDRESSES * (BDR_CONFIG_MAX_HOST + 9) + 1)
#define VALUE_MAX \
	(ADDRESSES_TEXT_MAX > BDR_SCHEDULE_TEXT_MAX ? ADDRESSES_TEXT_MAX : BDR_SCHEDULE_TEXT_MAX)
_Static_assert(VALUE_MAX >= BDR_RATE_TEXT_MAX, "a rate fits a value buffer");

void bdr_config_fmt_number(const struct bdr_config_key *k, char *buf, size_t n, uint64_t v);
void bdr_config_fmt_address(const struct bdr_config_address *a, char *buf, size_t n);
void bdr_config_fmt_address_or_name(const struct bdr_config_address *a, char *buf, size_t n);
/* An address field starts inline (not a reference to an [address] section). */
void bdr_config_address_init(struct bdr_config_address *a);
bool bdr_config_digits_and_dots(const char *s);
/* Whether the list "a,b,c" (a packages value) holds name. */
bool bdr_config_list_has(const char *list, const char *name);

#endif
