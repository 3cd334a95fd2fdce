/* One error convention for all of bdr: functions return int, 0 on success
 * and a negative value on failure: -errno for system errors, or -BDR_E*
 * for bdr's own classes. bdr_strerror() names either kind.
 *
 * Where a caller needs to know *which* entry or field was wrong, functions
 * take an optional struct bdr_diag that receives one human-readable line
 * ("entry 'a/b': path contains '..'"). It may always be NULL. */
#ifndef BDR_ERROR_H
#define BDR_ERROR_H

#include <stddef.h>

enum bdr_err {
	BDR_E_FIRST = 4096, /* above every errno value */
	BDR_EFORMAT,        /* malformed encoding */
	BDR_ELIMIT,         /* a length or count exceeds a hard limit */
	BDR_ESIG,           /* signature does not verify */
	BDR_EKEY,           /* key not trusted or malformed */
	BDR_EPATH,          /* unsafe or invalid path */
	BDR_EDUP,           /* duplicate entry */
	BDR_EORDER,         /* entries not in canonical order */
	BDR_EHASH,          /* content does not match its hash or id */
	BDR_ECHANGED,       /* file changed while it was being read */
	BDR_EDB,            /* database error */
	BDR_EVERSION,       /* unsupported format or schema version */
	BDR_ENOTFOUND,      /* no such package, version or chunk */
	BDR_ECORRUPT,       /* on-disk state is inconsistent */
	BDR_EMISSING,       /* a chunk needed for a rebuild is not available */
	BDR_E_LAST
};

/* Names err (negative) in a static string; never returns NULL. */
const char *bdr_strerror(int err);

struct bdr_diag {
	char msg[512];
};

/* Records a formatted message in d (if d is not NULL) and returns err, so
 * error paths stay one line: return bdr_diag_set(d, -BDR_EPATH, "..."); */
int bdr_diag_set(struct bdr_diag *d, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
